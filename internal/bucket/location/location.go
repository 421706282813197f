// Package location turns a bucket location from releng.toml (SPEC §3.5:
// `releases`, `docs`) into a bucket.Bucket: s3://bucket[/prefix] (with
// optional ?region=&endpoint=&scheme=&addressing-style=), file:///abs/dir,
// or a path relative to the project root.
package location

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/s3"
)

// Kind is the kind of store a location names.
type Kind int

const (
	// Dir is a local directory.
	Dir Kind = iota + 1
	// S3 is an S3 bucket.
	S3
)

// Location is a parsed bucket location.
type Location struct {
	Kind Kind
	// Dir is the absolute directory, for Kind Dir.
	Dir string
	// S3 is the bucket's configuration (without credentials), for Kind S3.
	S3 s3.Config
}

// Options are what a location alone does not say.
type Options struct {
	// ProjectRoot resolves relative directory locations.
	ProjectRoot string
	// S3Endpoint and S3Region are the environment's s3_endpoint and
	// s3_region; a URL's own endpoint= and region= win over them.
	S3Endpoint, S3Region string
	// Credentials for S3 (nil: anonymous).
	Credentials *s3.Credentials
	// PartSize and PartConcurrency for S3 (0: defaults).
	PartSize        int64
	PartConcurrency int
}

// Parse parses a location.
func Parse(raw string, opts Options) (Location, error) {
	switch {
	case raw == "":
		return Location{}, fmt.Errorf("empty bucket location")
	case strings.HasPrefix(raw, "s3://"):
		c, err := s3.ParseURL(raw)
		if err != nil {
			return Location{}, err
		}
		if c.Endpoint == "" {
			c.Endpoint = opts.S3Endpoint
		}
		if c.Region == "" {
			c.Region = opts.S3Region
		}
		return Location{Kind: S3, S3: c}, nil
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
		return Location{}, fmt.Errorf("bucket location %q: unsupported scheme (want s3://bucket[/prefix], file:///dir or a relative path)", raw)
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

// Open parses a location and returns its bucket. It sends no request and
// creates no directory.
func Open(raw string, opts Options) (bucket.Bucket, error) {
	loc, err := Parse(raw, opts)
	if err != nil {
		return nil, err
	}
	return loc.Open(opts)
}

// Open returns the location's bucket.
func (l Location) Open(opts Options) (bucket.Bucket, error) {
	switch l.Kind {
	case Dir:
		return dir.New(l.Dir)
	case S3:
		c := l.S3
		c.Credentials = opts.Credentials
		c.PartSize, c.PartConcurrency = opts.PartSize, opts.PartConcurrency
		return s3.New(c)
	}
	return nil, fmt.Errorf("bucket location: unknown kind %d", l.Kind)
}
