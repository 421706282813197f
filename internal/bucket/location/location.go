// Package location is the one place that turns a bucket or store URI into
// a bucket.Bucket, for the releases and docs buckets (SPEC §3.5) and the
// binary cache (§9) alike:
//
//   - file:///abs/dir, an absolute path, or a path relative to the project
//     root: a local directory (package dir);
//   - s3://bucket[/prefix] with the connection parameters of a Nix S3
//     store URI — region=, endpoint=, scheme=, addressing-style=,
//     profile=, multipart-chunk-size= (alias buffer-size=) — the
//     environment's s3_endpoint and s3_region filling in for a missing
//     endpoint= and region= (package s3);
//   - http(s)://host[/path]: a store read over HTTP, read-only, as stock
//     Nix reads a binary cache (package httpstore).
//
// Every bucket it opens gets the same decorators: the concurrency limit
// (package limit) and, around it, the retry decorator under one shared
// policy (packages bucket/retry and internal/retry), with an OnRetry hook.
// How a kind of store behaves (what it records, whether it can be listed,
// written or hashed cheaply) is its implementation's business, never the
// caller's: a caller that needs a Nix cache's directory layout says
// Options.NixCache, and asks for checksums with bucket.StatSHA256.
package location

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/httpstore"
	"github.com/releng-project/releng/internal/bucket/limit"
	bucketretry "github.com/releng-project/releng/internal/bucket/retry"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/retry"
)

// Kind is the kind of store a location names.
type Kind int

const (
	// Dir is a local directory.
	Dir Kind = iota + 1
	// S3 is an S3 bucket.
	S3
	// HTTP is a store read over HTTP(S).
	HTTP
)

// DefaultConcurrency is the number of operations in flight on one bucket
// when Options.Concurrency is 0: as many as the S3 transport keeps
// connections to a host, above what any stage runs at once (a cache push
// checks 32 paths at a time while it uploads -j NARs).
const DefaultConcurrency = 64

// Location is a parsed bucket location.
type Location struct {
	Kind Kind
	// Dir is the absolute directory, for Kind Dir.
	Dir string
	// S3 is the bucket's configuration as the URL gives it (connection
	// fields, Profile, PartSize; no credentials), for Kind S3. Open fills
	// in the environment's endpoint and region.
	S3 s3.Config
	// URL is the base URL, for Kind HTTP.
	URL string
}

// Options are what a location alone does not say.
type Options struct {
	// ProjectRoot resolves relative directory locations.
	ProjectRoot string
	// S3Endpoint and S3Region are the environment's s3_endpoint and
	// s3_region; a URL's own endpoint= and region= win over them.
	S3Endpoint, S3Region string
	// Credentials for S3. nil reads the standard AWS chain (environment,
	// then the shared credentials file for the URL's profile= or
	// AWS_PROFILE); an empty chain means anonymous requests.
	Credentials *s3.Credentials
	// PartSize is the S3 part size when the URL gives no
	// multipart-chunk-size= (0: s3.DefaultPartSize); PartConcurrency the
	// parts of one upload in flight (0: s3's default).
	PartSize        int64
	PartConcurrency int
	// Concurrency bounds the operations in flight on the bucket (0:
	// DefaultConcurrency).
	Concurrency int
	// Retry is the retry policy of every operation and S3 request (zero:
	// the defaults); OnRetry, if set, is told about each retry.
	Retry   retry.Policy
	OnRetry func(retry.Event)
	// NixCache opens the location as a Nix binary cache: a directory is
	// written as Nix's own file:// store writes one (dir.NewNixCache: no
	// fsync per file, no metadata records, so nothing but the cache's
	// files; SHA-256s are then computed by reading files back). S3 and
	// HTTP stores are the same either way.
	NixCache bool
	// Transport replaces the HTTP transport of S3 and HTTP stores (tests).
	Transport http.RoundTripper
}

// Parse parses a location. It applies no defaults but for resolving a
// relative directory against opts.ProjectRoot.
func Parse(raw string, opts Options) (Location, error) {
	switch {
	case raw == "":
		return Location{}, fmt.Errorf("empty bucket location")
	case strings.HasPrefix(raw, "s3://"):
		c, err := s3.ParseURL(raw)
		if err != nil {
			return Location{}, err
		}
		return Location{Kind: S3, S3: c}, nil
	case strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "https://"):
		u, err := httpstore.ParseURL(raw)
		if err != nil {
			return Location{}, err
		}
		return Location{Kind: HTTP, URL: u.String()}, nil
	case strings.HasPrefix(raw, "file:"):
		u, err := url.Parse(raw)
		if err != nil {
			return Location{}, fmt.Errorf("bucket location %q: %v", raw, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("bucket location %q: want file:///absolute/path (a host %q is not supported)", raw, u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return Location{}, fmt.Errorf("bucket location %q: a directory location takes no ?parameters or #fragment", raw)
		}
		if !filepath.IsAbs(u.Path) {
			return Location{}, fmt.Errorf("bucket location %q: want file:///absolute/path", raw)
		}
		return Location{Kind: Dir, Dir: filepath.Clean(u.Path)}, nil
	case strings.Contains(raw, "://"):
		return Location{}, fmt.Errorf("bucket location %q: unsupported scheme (want s3://bucket[/prefix], http(s)://host[/path] (read-only), file:///dir or a relative path)", raw)
	}
	p := raw
	if !filepath.IsAbs(p) {
		if opts.ProjectRoot == "" {
			return Location{}, fmt.Errorf("bucket location %q: a relative path needs the project root", raw)
		}
		p = filepath.Join(opts.ProjectRoot, p)
	}
	return Location{Kind: Dir, Dir: filepath.Clean(p)}, nil
}

// Open parses a location and returns its bucket, decorated (see
// Location.Open). It sends no request and creates no directory.
func Open(raw string, opts Options) (bucket.Bucket, error) {
	loc, err := Parse(raw, opts)
	if err != nil {
		return nil, err
	}
	return loc.Open(opts)
}

// Open returns the location's bucket behind the concurrency limit and the
// retry decorator. It sends no request and creates no directory; for S3
// without Options.Credentials it reads the AWS chain.
func (l Location) Open(opts Options) (bucket.Bucket, error) {
	b, host, err := l.open(opts)
	if err != nil {
		return nil, err
	}
	b = limit.New(b, cmp.Or(opts.Concurrency, DefaultConcurrency))
	return bucketretry.New(b, bucketretry.Options{Policy: opts.Retry, OnRetry: opts.OnRetry, Host: host}), nil
}

// open returns the undecorated bucket and its server's host.
func (l Location) open(opts Options) (bucket.Bucket, string, error) {
	switch l.Kind {
	case Dir:
		if opts.NixCache {
			b, err := dir.NewNixCache(l.Dir)
			return b, "", err
		}
		b, err := dir.New(l.Dir)
		return b, "", err
	case S3:
		c := l.S3
		c.Endpoint = cmp.Or(c.Endpoint, opts.S3Endpoint)
		c.Region = cmp.Or(c.Region, opts.S3Region)
		c.Credentials = opts.Credentials
		if c.Credentials == nil {
			creds, err := credentials.FromChain(c.Profile)
			if err != nil {
				return nil, "", fmt.Errorf("S3 credentials for %s: %w", c.URL(), err)
			}
			c.Credentials = s3.FromCredentials(creds)
		}
		c.PartSize = cmp.Or(c.PartSize, opts.PartSize)
		c.PartConcurrency = opts.PartConcurrency
		c.Retry = opts.Retry
		c.Transport = opts.Transport
		b, err := s3.New(c)
		if err != nil {
			return nil, "", err
		}
		return b, b.Host(), nil
	case HTTP:
		b, err := httpstore.New(httpstore.Config{URL: l.URL, Transport: opts.Transport})
		if err != nil {
			return nil, "", err
		}
		return b, b.Host(), nil
	}
	return nil, "", fmt.Errorf("bucket location: unknown kind %d", l.Kind)
}
