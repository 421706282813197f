// Package httpstore is a read-only bucket.Bucket over plain HTTP(S): a
// binary cache read as stock Nix reads one (https://cache.example.org),
// or any bucket a web server or an S3 endpoint with anonymous read serves.
// Later commands (closure diff, promote) read caches this way.
//
// Stat is a HEAD and Get a GET of BASE/KEY, every byte of the key but
// unreserved characters and '/' percent-encoded. A 404 (or 410) is
// bucket.ErrNotFound and a 403 bucket.ErrForbidden (an S3 bucket that may
// not be listed answers 403 for a missing key: bucket.Exists can count it
// as missing). Content-Type, Content-Encoding and Last-Modified are
// reported as the server sends them, and the bytes are returned as
// stored: the client asks for no transfer compression and undoes none. The
// SHA-256 is reported when the server sends the x-amz-meta-sha256 header
// that releng's S3 uploads record, and is otherwise unknown. Requests are
// tried once; location.Open puts the retry decorator around the bucket
// (429 and 503 answers carry their Retry-After).
//
// HTTP cannot list: List fails with an error matching bucket.ErrNoListing
// that says to use s3://. Put, PutResumable, Delete and AbortUpload fail
// with an error matching bucket.ErrReadOnly, sending nothing.
package httpstore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/retry"
)

// Config says where a store is.
type Config struct {
	// URL is the store's base URL: http(s)://host[:port][/path], without
	// credentials, query or fragment.
	URL string
	// Transport replaces the HTTP transport (tests); nil is
	// bucket.NewTransport().
	Transport http.RoundTripper
}

// Bucket is a read-only store read over HTTP(S).
type Bucket struct {
	base   string // scheme://host[:port]/path, escaped, without the trailing '/'
	host   string
	client *http.Client
}

var _ bucket.Bucket = (*Bucket)(nil)

// ParseURL checks an http(s):// store URL and returns it without a
// trailing '/'.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("store URL %q: want http(s)://host[/path]", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("store URL %q: credentials do not belong in the URL", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("store URL %q: no host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("store URL %q: an HTTP store takes no ?parameters or #fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// New returns the store at cfg.URL. It sends no request.
func New(cfg Config) (*Bucket, error) {
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		tr = bucket.NewTransport()
	}
	return &Bucket{base: u.String(), host: u.Host, client: &http.Client{Transport: tr}}, nil
}

// String implements bucket.Bucket: the base URL.
func (b *Bucket) String() string { return b.base }

// Host is the server's host[:port].
func (b *Bucket) Host() string { return b.host }

// objectURL is the URL of key, every byte but unreserved characters and
// '/' escaped (so '+', '?', '#', '%' and spaces mean themselves).
func (b *Bucket) objectURL(key string) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	s.WriteString(b.base)
	s.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			s.WriteByte(c)
			continue
		}
		s.WriteByte('%')
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

func (b *Bucket) fail(op, key string, err error) error {
	return &bucket.Error{Op: op, URL: bucket.ObjectURL(b, key), Err: err}
}

// request sends method for key and returns a 200 response.
func (b *Bucket) request(ctx context.Context, method, op, key string) (*http.Response, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return nil, b.fail(op, key, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.objectURL(key), nil)
	if err != nil {
		return nil, b.fail(op, key, err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, b.fail(op, key, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		return nil, b.fail(op, key, fmt.Errorf("%w (the server answered 410 Gone)", bucket.ErrNotFound))
	}
	return nil, b.fail(op, key, &bucket.ServerError{StatusCode: resp.StatusCode, Message: http.StatusText(resp.StatusCode), Delay: retry.ResponseDelay(resp)})
}

// info describes key from the headers of resp.
func info(key string, resp *http.Response) bucket.ObjectInfo {
	oi := bucket.ObjectInfo{
		Key:             key,
		Size:            resp.ContentLength,
		ContentType:     resp.Header.Get("Content-Type"),
		ContentEncoding: resp.Header.Get("Content-Encoding"),
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		oi.ModTime = t
	}
	if sum := strings.ToLower(resp.Header.Get("X-Amz-Meta-Sha256")); sum != "" && bucket.ValidSHA256(sum) == nil {
		oi.SHA256 = sum
	}
	return oi
}

// Stat implements bucket.Bucket with a HEAD request. Size is -1 when the
// server does not say.
func (b *Bucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	resp, err := b.request(ctx, http.MethodHead, "stat", key)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	resp.Body.Close()
	return info(key, resp), nil
}

// Get implements bucket.Bucket with a GET request. A body cut short
// fails with io.ErrUnexpectedEOF.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := b.request(ctx, http.MethodGet, "get", key)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// readOnly is the error of a write.
func (b *Bucket) readOnly(op, key string) error {
	return b.fail(op, key, fmt.Errorf("%w: %s is read over HTTP; write through s3://BUCKET?endpoint=… or the cache's directory", bucket.ErrReadOnly, b.base))
}

// Put implements bucket.Bucket: it fails with bucket.ErrReadOnly.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	return bucket.ObjectInfo{}, b.readOnly("put", key)
}

// PutResumable implements bucket.Bucket: it fails with bucket.ErrReadOnly.
func (b *Bucket) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	return bucket.ObjectInfo{}, b.readOnly("put", key)
}

// Delete implements bucket.Bucket: it fails with bucket.ErrReadOnly.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	return b.readOnly("delete", key)
}

// AbortUpload implements bucket.Bucket: it fails with bucket.ErrReadOnly.
func (b *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	return b.readOnly("abort upload", key)
}

// List implements bucket.Bucket: it fails with bucket.ErrNoListing.
func (b *Bucket) List(ctx context.Context, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	if err := bucket.ValidatePrefix(prefix); err != nil {
		return nil, b.fail("list", prefix, err)
	}
	return nil, b.fail("list", prefix, fmt.Errorf("%w: HTTP has no listing; list the bucket behind %s through s3://BUCKET?endpoint=…", bucket.ErrNoListing, b.base))
}
