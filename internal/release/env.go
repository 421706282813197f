package release

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/location"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
)

// Target is an environment with everything needed to reach it: its
// buckets, cache and keys. Opening one sends no request.
type Target struct {
	Env      *config.Environment
	Releases bucket.Bucket
	Docs     bucket.Bucket
	CacheURI *binarycache.StoreURI
	Cache    bucket.Bucket
	// PublicKeys check the cache's signatures (verify, promote).
	PublicKeys []nixstore.PublicKey
	// Creds are the S3 credentials of this run (nil: anonymous or none needed).
	Creds *credentials.Credentials
}

// TargetOptions say how to open an environment.
type TargetOptions struct {
	// NeedCredentials runs credentials_command or reads the AWS chain.
	NeedCredentials bool
	// OnRetry is told about each retried request.
	OnRetry func(retry.Event)
	// Retry is the retry policy (zero: the defaults).
	Retry retry.Policy
}

// OpenTarget resolves environment name of p (the default one for "").
func OpenTarget(ctx context.Context, p *project.Project, name string, opts TargetOptions) (*Target, error) {
	env, err := p.Config.Environment(name)
	if err != nil {
		return nil, err
	}
	t := &Target{Env: env}
	if opts.NeedCredentials && usesS3(env) {
		if len(env.CredentialsCommand) > 0 {
			argv := make([]string, len(env.CredentialsCommand))
			vars := p.Vars()
			vars["env"] = env.Name
			for i, a := range env.CredentialsCommand {
				if argv[i], err = config.Expand(a, vars); err != nil {
					return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s.credentials_command: %v", env.Name, err)}
				}
			}
			if t.Creds, err = credentials.FromCommand(ctx, argv); err != nil {
				return nil, err
			}
		} else if t.Creds, err = credentials.FromChain(""); err != nil {
			return nil, err
		}
	}
	lopts := location.Options{ProjectRoot: p.Root, S3Endpoint: env.S3Endpoint, S3Region: env.S3Region, Credentials: s3.FromCredentials(t.Creds), OnRetry: opts.OnRetry, Retry: opts.Retry}
	if env.Releases != "" {
		b, err := location.Open(env.Releases, lopts)
		if err != nil {
			return nil, fmt.Errorf("environments.%s.releases: %w", env.Name, err)
		}
		t.Releases = b
	}
	if env.Docs != "" {
		b, err := location.Open(env.Docs, lopts)
		if err != nil {
			return nil, fmt.Errorf("environments.%s.docs: %w", env.Name, err)
		}
		t.Docs = b
	}
	if env.Cache != "" {
		raw := cacheURI(p, env.Cache)
		if t.CacheURI, err = binarycache.ParseStoreURI(raw); err != nil {
			return nil, fmt.Errorf("environments.%s.cache: %w", env.Name, err)
		}
		b, err := t.CacheURI.Open(binarycache.OpenOptions{Credentials: t.Creds, S3Endpoint: env.S3Endpoint, S3Region: env.S3Region, OnRetry: opts.OnRetry, Retry: opts.Retry})
		if err != nil {
			return nil, fmt.Errorf("environments.%s.cache: %w", env.Name, err)
		}
		t.Cache = b
	}
	for _, k := range env.PublicKeys {
		pk, err := loadPublicKey(p, k)
		if err != nil {
			return nil, fmt.Errorf("environments.%s.public_keys: %w", env.Name, err)
		}
		t.PublicKeys = append(t.PublicKeys, pk)
	}
	return t, nil
}

// cacheURI makes a store URI of a cache setting: a bare path (the built-in
// local environment's release/local/cache?…) becomes file:///ABS?….
func cacheURI(p *project.Project, raw string) string {
	if strings.Contains(raw, "://") {
		return raw
	}
	path, query, _ := strings.Cut(raw, "?")
	u := "file://" + (&url.URL{Path: p.Config.Abs(path)}).EscapedPath()
	if query != "" {
		u += "?" + query
	}
	return u
}

func usesS3(env *config.Environment) bool {
	return strings.HasPrefix(env.Releases, "s3://") || strings.HasPrefix(env.Docs, "s3://") || strings.HasPrefix(env.Cache, "s3://")
}

func loadPublicKey(p *project.Project, k string) (nixstore.PublicKey, error) {
	if pk, err := nixstore.ParsePublicKey(k); err == nil {
		return pk, nil
	}
	return nixstore.LoadPublicKeyFile(p.Config.Abs(k))
}

// SigningKeys loads the keys that sign cache paths: the environment's
// signing_key and the cache URI's secret-key(s). For the built-in local
// environment a key is generated on first use.
func (t *Target) SigningKeys(p *project.Project, allowInsecure bool) ([]*nixstore.SecretKey, error) {
	var extra []string
	if t.Env.SigningKey != "" {
		path := p.Config.Abs(t.Env.SigningKey)
		if t.Env.BuiltIn {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return nil, err
				}
				if _, err := nixstore.GenerateKeyFile(p.Config.Name+"-local-1", path); err != nil {
					return nil, fmt.Errorf("generate the local signing key: %w", err)
				}
			}
		}
		extra = append(extra, path)
	}
	if t.CacheURI == nil {
		return nil, nil
	}
	return t.CacheURI.LoadKeys(allowInsecure, extra...)
}

// VerifyKeys are the public keys verify checks signatures against: the
// configured public_keys, or those of the signing keys.
func (t *Target) VerifyKeys(p *project.Project) ([]nixstore.PublicKey, error) {
	if len(t.PublicKeys) > 0 {
		return t.PublicKeys, nil
	}
	keys, err := t.SigningKeys(p, true)
	if err != nil {
		return nil, fmt.Errorf("environments.%s: no public_keys configured and the signing key cannot be read (%w); set public_keys", t.Env.Name, err)
	}
	var pks []nixstore.PublicKey
	for _, k := range keys {
		pks = append(pks, k.PublicKey())
	}
	return pks, nil
}
