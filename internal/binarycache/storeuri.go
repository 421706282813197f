package binarycache

import (
	"cmp"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/location"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/textutil"
)

// Compression methods for NARs (compression=) and for narinfo and listing
// bodies (narinfo-compression=, ls-compression=).
const (
	CompressionNone = "none"
	CompressionXZ   = "xz"
	CompressionZstd = "zstd"
)

// Params are the store URI parameters releng accepts, as Nix names them
// (SPEC §9). Any other parameter is an error.
var Params = []string{
	"compression", "compression-level", "parallel-compression",
	"write-nar-listing", "want-mass-query", "priority",
	"secret-key", "secret-keys",
	"narinfo-compression", "ls-compression", "log-compression",
	// S3 only.
	"region", "endpoint", "scheme", "profile", "addressing-style",
	"multipart-upload", "multipart-chunk-size", "buffer-size",
}

var s3Params = []string{"region", "endpoint", "scheme", "profile", "addressing-style", "multipart-upload", "multipart-chunk-size", "buffer-size"}

// StoreURI is a parsed binary cache store URI: file:///dir?… or
// s3://bucket?….
type StoreURI struct {
	// Raw is the URI as given. Nix store URIs carry no credentials, so it
	// may be printed.
	Raw string
	// Scheme is "file", "s3", or "http"/"https" (read-only).
	Scheme string
	// URL is the base URL of an http(s):// cache.
	URL string
	// Dir is the cache directory of a file:// URI (absolute, clean).
	Dir string
	// Bucket and Prefix locate an s3:// cache. A prefix (s3://bucket/dir)
	// is a releng extension; Nix's s3:// store takes a bucket only.
	Bucket, Prefix string

	// Compression of NARs: CompressionZstd (the default), CompressionXZ or
	// CompressionNone.
	Compression string
	// CompressionLevel is the zstd level (1–22) or xz preset (0–9); -1
	// (the default) is the method's default.
	CompressionLevel int
	// ParallelCompression is accepted for compatibility: zstd NARs are
	// always compressed in parallel frames, whose bytes do not depend on
	// it.
	ParallelCompression bool
	// WriteNARListing writes HASH.ls next to each narinfo.
	WriteNARListing bool
	// WantMassQuery and Priority go to nix-cache-info.
	WantMassQuery bool
	Priority      int
	HasPriority   bool
	// SecretKeyFiles are the key files of secret-key= and secret-keys=.
	SecretKeyFiles []string
	// NarinfoCompression, LSCompression and LogCompression compress those
	// bodies ("" for none); only on S3, where Content-Encoding exists.
	NarinfoCompression, LSCompression, LogCompression string

	// S3 parameters.
	Region, Endpoint, S3Scheme, Profile, AddressingStyle string
	// MultipartUpload is Nix's multipart-upload. releng streams NARs of
	// unknown compressed size, which needs multipart above one part, so
	// false is accepted with a warning (see Warnings).
	MultipartUpload    bool
	HasMultipartUpload bool
	// PartSize is multipart-chunk-size (or buffer-size), 0 for releng's
	// default.
	PartSize int64
}

// URIError is a store URI that cannot be used: a usage error.
type URIError struct {
	URI string
	Msg string
}

func (e *URIError) Error() string { return fmt.Sprintf("store URI %q: %s", e.URI, e.Msg) }

// ParseStoreURI parses a binary cache store URI as `nix copy --to` takes it.
// Errors are *URIError values naming the URI and the parameter at fault.
func ParseStoreURI(raw string) (*StoreURI, error) {
	fail := func(format string, args ...any) (*StoreURI, error) {
		return nil, &URIError{URI: raw, Msg: fmt.Sprintf(format, args...)}
	}
	u := &StoreURI{Raw: raw, Compression: CompressionZstd, CompressionLevel: -1}
	base, query, _ := strings.Cut(raw, "?")
	if strings.Contains(base, "#") || strings.Contains(query, "#") {
		return fail("a store URI has no #fragment")
	}
	switch {
	case strings.HasPrefix(base, "file://"):
		u.Scheme = "file"
		p, err := url.PathUnescape(strings.TrimPrefix(base, "file://"))
		if err != nil {
			return fail("%v", err)
		}
		if !strings.HasPrefix(p, "/") {
			return fail("want file:///absolute/directory (a file:// store takes an absolute path, no host)")
		}
		u.Dir = filepath.Clean(p)
		if u.Dir == "/" {
			return fail("the cache directory cannot be /")
		}
	case strings.HasPrefix(base, "s3://"):
		u.Scheme = "s3"
		rest := strings.TrimPrefix(base, "s3://")
		name, prefix, _ := strings.Cut(rest, "/")
		if err := validBucketName(name); err != nil {
			return fail("%v", err)
		}
		u.Bucket = name
		u.Prefix = strings.Trim(prefix, "/")
		if u.Prefix != "" {
			if err := bucket.ValidateKey(u.Prefix); err != nil {
				return fail("bad prefix %q: %v", u.Prefix, err)
			}
		}
	case strings.HasPrefix(base, "http://"), strings.HasPrefix(base, "https://"):
		// Read-only: how stock Nix reads a cache (verify, closure tools).
		u.Scheme, _, _ = strings.Cut(base, "://")
		u.URL = strings.TrimRight(base, "/")
		if _, err := url.Parse(u.URL); err != nil {
			return fail("%v", err)
		}
	case strings.Contains(base, "://"):
		s, _, _ := strings.Cut(base, "://")
		return fail("unsupported store type %q: want file:///dir or s3://bucket", s)
	default:
		return fail("not a binary cache URI: want file:///dir or s3://bucket (a plain path is a local Nix store, not a binary cache)")
	}

	seen := map[string]bool{}
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return fail("parameter %q: %v", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return fail("parameter %s: value %q: %v", key, v, err)
		}
		if !slices.Contains(Params, key) {
			msg := fmt.Sprintf("unknown parameter %q", key)
			if s := suggest(key, Params); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return fail("%s; releng accepts: %s", msg, strings.Join(Params, ", "))
		}
		if !hasValue {
			return fail("parameter %s has no value (write %s=VALUE)", key, key)
		}
		if seen[key] {
			return fail("parameter %s is given twice", key)
		}
		seen[key] = true
		if u.Scheme != "s3" && slices.Contains(s3Params, key) {
			return fail("parameter %s applies to s3:// stores only", key)
		}
		if err := u.set(key, val); err != nil {
			return fail("parameter %s=%s: %v", key, val, err)
		}
	}
	if seen["multipart-chunk-size"] && seen["buffer-size"] {
		return fail("give multipart-chunk-size or buffer-size, not both")
	}
	return u, nil
}

func (u *StoreURI) set(key, val string) error {
	var err error
	switch key {
	case "compression":
		switch val {
		case CompressionZstd, CompressionXZ, CompressionNone:
			u.Compression = val
		default:
			return fmt.Errorf("releng compresses NARs with zstd, xz or none")
		}
	case "compression-level":
		u.CompressionLevel, err = strconv.Atoi(val)
		if err == nil && (u.CompressionLevel < -1 || u.CompressionLevel > 22) {
			err = fmt.Errorf("want -1 (default) or a level from 0 to 22")
		}
	case "parallel-compression":
		u.ParallelCompression, err = parseBool(val)
	case "write-nar-listing":
		u.WriteNARListing, err = parseBool(val)
	case "want-mass-query":
		u.WantMassQuery, err = parseBool(val)
	case "priority":
		u.Priority, err = strconv.Atoi(val)
		u.HasPriority = err == nil
	case "secret-key", "secret-keys":
		for _, f := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' }) {
			u.SecretKeyFiles = append(u.SecretKeyFiles, f)
		}
		if len(u.SecretKeyFiles) == 0 {
			err = fmt.Errorf("want the path of a secret key file")
		}
	case "narinfo-compression", "ls-compression", "log-compression":
		switch val {
		case "", CompressionNone:
			val = ""
		case CompressionZstd, CompressionXZ:
		default:
			return fmt.Errorf("releng compresses these with zstd, xz or none")
		}
		switch key {
		case "narinfo-compression":
			u.NarinfoCompression = val
		case "ls-compression":
			u.LSCompression = val
		default:
			u.LogCompression = val
		}
	case "region":
		u.Region = val
	case "endpoint":
		u.Endpoint = val
	case "scheme":
		if val != "http" && val != "https" {
			err = fmt.Errorf("want http or https")
		}
		u.S3Scheme = val
	case "profile":
		u.Profile = val
	case "addressing-style":
		if val != "auto" && val != "path" && val != "virtual" {
			err = fmt.Errorf("want auto, path or virtual")
		}
		u.AddressingStyle = val
	case "multipart-upload":
		u.MultipartUpload, err = parseBool(val)
		u.HasMultipartUpload = true
	case "multipart-chunk-size", "buffer-size":
		u.PartSize, err = strconv.ParseInt(val, 10, 64)
		if err == nil && (u.PartSize < bucket.MinPartSize || u.PartSize > bucket.MaxPartSize) {
			err = fmt.Errorf("want a number of bytes from %d (5 MiB) to %d (5 GiB)", bucket.MinPartSize, int64(bucket.MaxPartSize))
		}
	}
	if ne, ok := err.(*strconv.NumError); ok {
		err = fmt.Errorf("not a number: %v", ne.Err)
	}
	return err
}

// parseBool accepts Nix's spellings of a boolean setting.
func parseBool(s string) (bool, error) {
	switch s {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("want true or false")
}

func validBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("bucket name %q may hold only lowercase letters, digits, '-' and '.'", name)
		}
	}
	return nil
}

// ReadOnly reports whether releng can only read the cache (http(s)://).
func (u *StoreURI) ReadOnly() bool { return u.URL != "" }

// Warnings are what the URI asks for that releng does differently, as Nix
// itself does on the same store (the CLI prints them).
func (u *StoreURI) Warnings() []string {
	var w []string
	if u.Scheme == "file" {
		for _, p := range []struct{ k, v string }{{"narinfo-compression", u.NarinfoCompression}, {"ls-compression", u.LSCompression}} {
			if p.v != "" {
				w = append(w, fmt.Sprintf("%s=%s is ignored for a file:// cache, as Nix ignores it: a directory has no Content-Encoding, so a compressed body would be unreadable", p.k, p.v))
			}
		}
	}
	if u.HasMultipartUpload && !u.MultipartUpload {
		w = append(w, "multipart-upload=false is ignored: releng streams NARs without knowing their compressed size, which needs a multipart upload for anything larger than one part")
	}
	if u.Compression == CompressionNone && u.CompressionLevel != -1 {
		w = append(w, "compression-level is ignored with compression=none")
	}
	return w
}

// bodyEncoding is the Content-Encoding to use for a narinfo or listing
// compressed with method on this store: none on file://.
func (u *StoreURI) bodyEncoding(method string) string {
	if u.Scheme != "s3" {
		return ""
	}
	return method
}

// Extension is the NAR file name extension of the URI's compression.
func (u *StoreURI) Extension() string {
	switch u.Compression {
	case CompressionZstd:
		return ".zst"
	case CompressionXZ:
		return ".xz"
	}
	return ""
}

// OpenOptions are what a store URI alone does not say.
type OpenOptions struct {
	// Credentials for S3; nil reads the standard chain (environment,
	// ~/.aws/credentials with the URI's profile=).
	Credentials *credentials.Credentials
	// S3Endpoint and S3Region are defaults for a URI without endpoint= or
	// region= (an environment's s3_endpoint and s3_region).
	S3Endpoint, S3Region string
	// PartConcurrency is the number of parts of one S3 upload in flight
	// (default 1: NARs are uploaded several at a time, and each part in
	// flight is a buffer of PartSize).
	PartConcurrency int
	// Retry is the retry policy (zero: the shared defaults); OnRetry is
	// told about each retry.
	Retry   retry.Policy
	OnRetry func(retry.Event)
}

// Open returns the bucket holding the cache, opened as every bucket is
// (location.Open: the same S3 connection defaults, concurrency limit and
// retries) with a directory laid out as Nix's file:// store writes one
// (location.Options.NixCache). Parts are the smallest S3 allows unless
// multipart-chunk-size= says otherwise: NARs are uploaded several at a
// time, each part in flight a buffer. It sends no request.
func (u *StoreURI) Open(opts OpenOptions) (bucket.Bucket, error) {
	loc := location.Location{Kind: location.Dir, Dir: u.Dir}
	if u.URL != "" {
		loc = location.Location{Kind: location.HTTP, URL: u.URL}
	}
	if u.Scheme == "s3" {
		loc = location.Location{Kind: location.S3, S3: s3.Config{
			Bucket: u.Bucket, Prefix: u.Prefix, Endpoint: u.Endpoint, Region: u.Region, Scheme: u.S3Scheme,
			AddressingStyle: u.AddressingStyle, Profile: u.Profile, PartSize: u.PartSize,
		}}
	}
	b, err := loc.Open(location.Options{
		S3Endpoint:      opts.S3Endpoint,
		S3Region:        opts.S3Region,
		Credentials:     s3.FromCredentials(opts.Credentials),
		PartSize:        bucket.MinPartSize,
		PartConcurrency: cmp.Or(opts.PartConcurrency, 1),
		Retry:           opts.Retry,
		OnRetry:         opts.OnRetry,
		NixCache:        true,
	})
	if err != nil {
		return nil, fmt.Errorf("store URI %q: %w", u.Raw, err)
	}
	return b, nil
}

// LoadKeys reads the secret keys of secret-key= / secret-keys= (and any
// extra files), refusing key files that group or others may access unless
// allowInsecure.
func (u *StoreURI) LoadKeys(allowInsecure bool, extra ...string) ([]*nixstore.SecretKey, error) {
	var keys []*nixstore.SecretKey
	names := map[string]string{}
	for _, f := range append(slices.Clone(u.SecretKeyFiles), extra...) {
		k, err := nixstore.LoadSecretKeyFile(f, allowInsecure)
		if err != nil {
			return nil, err
		}
		if prev, ok := names[k.Name()]; ok {
			return nil, fmt.Errorf("secret key files %s and %s hold keys of the same name; a narinfo can carry one signature per key name", prev, f)
		}
		names[k.Name()] = f
		keys = append(keys, k)
	}
	return keys, nil
}

// suggest returns the candidate closest to s, if it is close enough to be
// a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := textutil.Closest(s, candidates)
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}
