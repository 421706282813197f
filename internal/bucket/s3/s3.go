// Package s3 is a bucket.Bucket on an S3-compatible server — AWS, MinIO,
// Garage, Cloudflare R2 — through minio-go.
//
// Requests are plain SigV4. Over plain HTTP the payload's SHA-256 is in
// x-amz-content-sha256: releng buffers each part (at most PartConcurrency+1
// parts of PartSize per upload in memory) and hashes it before sending.
// Over TLS the parts of a multipart upload are sent as UNSIGNED-PAYLOAD,
// as every AWS SDK does (TLS protects them on the wire), which saves
// hashing each byte twice; a single PUT signs its hash there too.
// It never sends request-checksum trailers, x-amz-checksum-* headers,
// aws-chunked bodies or STREAMING-* payload signatures, which Garage,
// older MinIO and R2 reject: minio-go's TrailingHeaders stays off and
// every write sets DisableContentSha256 so minio-go does not choose a
// streaming signature over plain HTTP (headers_test.go proves it against a
// real MinIO).
//
// An object that fits in one part is sent with a single PUT; larger ones
// and streams of unknown length as a multipart upload with several parts
// in flight, all parts but the last of one size (R2 requires it) chosen
// by bucket.ChoosePartSize so no object needs more than 10,000 parts.
// Each request of an upload is retried on transient errors
// (bucket.IsTransient) from its buffer, under Config.Retry (the shared
// retry policy, a server's Retry-After honoured); Stat, Get, Delete and
// List are tried once and left to the retry decorator. minio-go's own
// retries are off so that classification stays in one place. A failed Put
// aborts its multipart upload; a failed PutResumable leaves it to be
// resumed (see bucket.Bucket).
//
// The SHA-256 of an object is recorded as user metadata x-amz-meta-sha256:
// computed for single-PUT objects, taken from PutOptions.SHA256 (and
// verified against the bytes sent) for multipart ones, which have to
// declare their metadata before the first byte.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/retry"
)

// metaSHA256 is the user metadata key (x-amz-meta-sha256) holding an
// object's SHA-256 in lowercase hex.
const metaSHA256 = "sha256"

// DefaultPartSize is the part size used when Config.PartSize is 0.
const DefaultPartSize = 16 << 20

// Credentials are S3 access keys. A nil *Credentials means anonymous
// requests (a public bucket).
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey credentials.Secret
	SessionToken    credentials.Secret
}

// FromCredentials converts what package credentials obtained (nil stays
// nil: anonymous).
func FromCredentials(c *credentials.Credentials) *Credentials {
	if c == nil {
		return nil
	}
	return &Credentials{AccessKeyID: c.ID, SecretAccessKey: c.Secret, SessionToken: c.Token}
}

// Config says where a bucket is and how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended (with a '/') to every key; "" for none.
	Prefix string
	// Endpoint is host[:port] or a URL http(s)://host[:port]; "" is AWS
	// (s3.amazonaws.com).
	Endpoint string
	// Region defaults to us-east-1 (Garage wants its configured region,
	// usually "garage").
	Region string
	// Scheme is "https" (default) or "http"; an Endpoint URL's scheme
	// counts as set.
	Scheme string
	// AddressingStyle is "auto" (default: virtual-host style on AWS, path
	// style elsewhere), "path" or "virtual".
	AddressingStyle string
	// Credentials; nil for anonymous access.
	Credentials *Credentials
	// Profile is the profile of the shared AWS credentials file whose keys
	// location.Open reads when it is given no credentials (the URL's
	// profile=); New itself reads no credentials.
	Profile string
	// PartSize is the smallest part size (default DefaultPartSize, at
	// least bucket.MinPartSize); objects up to it are sent in one PUT.
	PartSize int64
	// PartConcurrency is the number of parts of one object in flight
	// (default 4).
	PartConcurrency int
	// Retry retries each request of an upload from its buffer (a single
	// PUT, the multipart creation, each part, the completion, an abort)
	// and the HEADs of a List with SHA256 (zero: the defaults). Stat,
	// Get, Delete and List are tried once: the retry decorator retries
	// them.
	Retry retry.Policy
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Bucket is an S3 bucket (or a prefix of one).
type Bucket struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	prefix string // cfg.Prefix + "/", or ""
	url    string
	host   string // the endpoint's host[:port]
	secure bool   // TLS
}

var _ bucket.Bucket = (*Bucket)(nil)

// URL is s3://bucket/prefix, for messages.
func (c Config) URL() string {
	u := "s3://" + c.Bucket
	if c.Prefix != "" {
		u += "/" + c.Prefix
	}
	return u
}

// endpoint returns host[:port] and whether to use TLS.
func (c Config) endpoint() (host string, secure bool, err error) {
	scheme := c.Scheme
	host = c.Endpoint
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return "", false, fmt.Errorf("s3 endpoint %q: %v", c.Endpoint, err)
		}
		if u.User != nil {
			return "", false, fmt.Errorf("s3 endpoint %q: credentials do not belong in the endpoint URL", u.Redacted())
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", false, fmt.Errorf("s3 endpoint %q: only scheme://host[:port] is allowed", c.Endpoint)
		}
		if scheme != "" && scheme != u.Scheme {
			return "", false, fmt.Errorf("s3 endpoint %q: scheme %q conflicts with scheme=%s", c.Endpoint, u.Scheme, scheme)
		}
		scheme, host = u.Scheme, u.Host
	}
	if host == "" {
		host = "s3.amazonaws.com"
	}
	switch scheme {
	case "", "https":
		return host, true, nil
	case "http":
		return host, false, nil
	}
	return "", false, fmt.Errorf("s3 scheme %q: want http or https", scheme)
}

// New returns the bucket cfg describes. It sends no request.
func New(cfg Config) (*Bucket, error) {
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3 bucket name %q: %v", cfg.Bucket, err)
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.Prefix != "" {
		if err := bucket.ValidateKey(cfg.Prefix); err != nil {
			return nil, fmt.Errorf("s3 prefix of %s: %w", cfg.URL(), err)
		}
	}
	host, secure, err := cfg.endpoint()
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	lookup := minio.BucketLookupAuto
	switch cfg.AddressingStyle {
	case "", "auto":
	case "path":
		lookup = minio.BucketLookupPath
	case "virtual":
		lookup = minio.BucketLookupDNS
	default:
		return nil, fmt.Errorf("s3 addressing-style %q: want auto, path or virtual", cfg.AddressingStyle)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < bucket.MinPartSize || cfg.PartSize > bucket.MaxPartSize {
		return nil, fmt.Errorf("s3 part size %d: must be between %d and %d bytes", cfg.PartSize, bucket.MinPartSize, int64(bucket.MaxPartSize))
	}
	if cfg.PartConcurrency <= 0 {
		cfg.PartConcurrency = 4
	}
	creds := miniocreds.NewStaticV4("", "", "") // anonymous
	if c := cfg.Credentials; c != nil {
		creds = miniocreds.NewStaticV4(c.AccessKeyID, c.SecretAccessKey.Reveal(), c.SessionToken.Reveal())
	}
	tr := cfg.Transport
	if tr == nil {
		tr = bucket.NewTransport()
	}
	tr = delayTransport{inner: tr}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		// Retries are ours (bucket.IsTransient), not minio-go's.
		MaxRetries: 1,
		// No x-amz-checksum-* trailers (TrailingHeaders stays false).
		TrailingHeaders: false,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %s: %v", host, err)
	}
	b := &Bucket{cfg: cfg, client: client, core: minio.Core{Client: client}, url: cfg.URL(), host: host, secure: secure}
	if cfg.Prefix != "" {
		b.prefix = cfg.Prefix + "/"
	}
	return b, nil
}

// Config returns the bucket's configuration (with defaults filled in).
func (b *Bucket) Config() Config { return b.cfg }

// String implements bucket.Bucket.
func (b *Bucket) String() string { return b.url }

// Host is the endpoint's host[:port].
func (b *Bucket) Host() string { return b.host }

func (b *Bucket) objectKey(key string) string { return b.prefix + key }

// fail wraps err as a *bucket.Error naming the object.
func (b *Bucket) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var be *bucket.Error
	if errors.As(err, &be) {
		return err
	}
	return &bucket.Error{Op: op, URL: bucket.ObjectURL(b, key), Err: b.convert(err)}
}

// convert turns a minio-go error answer into a *bucket.ServerError and
// makes sure no secret survives in an error.
func (b *Bucket) convert(err error) error { return b.convertDelay(err, 0) }

// convertDelay is convert giving a server error the Retry-After delay.
func (b *Bucket) convertDelay(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.StatusCode != 0 {
		return &bucket.ServerError{StatusCode: er.StatusCode, Code: er.Code, Message: b.redact(er.Message), RequestID: er.RequestID, Delay: delay}
	}
	if msg := err.Error(); b.redact(msg) != msg {
		return errors.New(b.redact(msg))
	}
	return err
}

func (b *Bucket) redact(s string) string {
	c := b.cfg.Credentials
	if c == nil {
		return s
	}
	for _, sec := range []credentials.Secret{c.SecretAccessKey, c.SessionToken} {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec.Reveal(), sec.String())
		}
	}
	return s
}

// once runs one request fn (which must use the ctx it is given) and
// converts its error, with the server's Retry-After, if any. Stat, Get,
// Delete and List are one request each: retrying them is the retry
// decorator's (location.Open), so that attempts do not multiply.
func (b *Bucket) once(ctx context.Context, fn func(ctx context.Context) error) error {
	slot := new(atomic.Int64)
	err := fn(context.WithValue(ctx, delayKey{}, slot))
	return b.convertDelay(err, time.Duration(slot.Load()))
}

// retry runs one request of an upload (or a HEAD of a List with
// SHA256) under the Retry policy: the request's body is still in its
// buffer, so it can be sent again where the retry decorator could not
// rewind the caller's stream.
// Its retries are reported to the hook of ctx naming the bucket and host.
func (b *Bucket) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	var onRetry func(retry.Event)
	if hook := retry.OnRetryFrom(ctx); hook != nil {
		onRetry = func(e retry.Event) {
			e.Op, e.URL, e.Host = "request", b.url, b.host
			hook(e)
		}
	}
	return b.cfg.Retry.Do(ctx, bucket.IsTransient, func(int) error { return b.once(ctx, fn) }, onRetry)
}

// delayKey is the context key of the slot where delayTransport leaves a
// response's Retry-After for once.
type delayKey struct{}

// delayTransport records the Retry-After of 429 and 503 answers (which
// minio-go's errors do not carry) in the request's slot.
type delayTransport struct{ inner http.RoundTripper }

func (t delayTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if d := retry.ResponseDelay(resp); d > 0 {
		if slot, ok := req.Context().Value(delayKey{}).(*atomic.Int64); ok {
			slot.Store(int64(d))
		}
	}
	return resp, err
}

func infoFrom(key string, oi minio.ObjectInfo) bucket.ObjectInfo {
	return bucket.ObjectInfo{
		Key:             key,
		Size:            oi.Size,
		SHA256:          strings.ToLower(oi.Metadata.Get("X-Amz-Meta-" + metaSHA256)),
		ContentType:     oi.ContentType,
		ContentEncoding: oi.Metadata.Get("Content-Encoding"),
		ModTime:         oi.LastModified,
	}
}

// Stat implements bucket.Bucket. It is one HEAD request, never cached.
func (b *Bucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, b.fail("stat", key, err)
	}
	var oi minio.ObjectInfo
	err := b.once(ctx, func(ctx context.Context) (err error) {
		oi, err = b.client.StatObject(ctx, b.cfg.Bucket, b.objectKey(key), minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return bucket.ObjectInfo{}, b.fail("stat", key, err)
	}
	return infoFrom(key, oi), nil
}

// Get implements bucket.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return nil, b.fail("get", key, err)
	}
	var rc io.ReadCloser
	err := b.once(ctx, func(ctx context.Context) (err error) {
		rc, _, _, err = b.core.GetObject(ctx, b.cfg.Bucket, b.objectKey(key), minio.GetObjectOptions{})
		return err
	})
	if err != nil {
		return nil, b.fail("get", key, err)
	}
	return rc, nil
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return b.fail("delete", key, err)
	}
	err := b.once(ctx, func(ctx context.Context) error {
		return b.client.RemoveObject(ctx, b.cfg.Bucket, b.objectKey(key), minio.RemoveObjectOptions{})
	})
	if errors.Is(err, bucket.ErrNotFound) {
		return nil
	}
	return b.fail("delete", key, err)
}

// List implements bucket.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	if err := bucket.ValidatePrefix(prefix); err != nil {
		return nil, b.fail("list", prefix, err)
	}
	var out []bucket.ObjectInfo
	err := b.once(ctx, func(ctx context.Context) error {
		out = out[:0]
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range b.client.ListObjects(lctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.objectKey(prefix), Recursive: opts.Recursive}) {
			if oi.Err != nil {
				return oi.Err
			}
			key, ok := strings.CutPrefix(oi.Key, b.prefix)
			if !ok {
				continue
			}
			if strings.HasSuffix(key, "/") {
				// A common prefix, or a "folder" marker object that some
				// tools create (not an object releng can address).
				if !opts.Recursive && oi.ETag == "" && key != prefix && bucket.ValidatePrefix(key) == nil {
					out = append(out, bucket.ObjectInfo{Key: key, IsPrefix: true})
				}
				continue
			}
			if bucket.ValidateKey(key) != nil {
				continue // written by another tool under a key releng refuses
			}
			out = append(out, bucket.ObjectInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified})
		}
		return nil
	})
	if err != nil {
		return nil, b.fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b bucket.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	if opts.SHA256 {
		if err := b.statAll(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// statAll fills the metadata of the objects in infos, several HEAD
// requests at a time.
func (b *Bucket) statAll(ctx context.Context, infos []bucket.ObjectInfo) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range infos {
		if infos[i].IsPrefix {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			var st bucket.ObjectInfo
			err := b.retry(ctx, func(ctx context.Context) (err error) {
				st, err = b.Stat(ctx, infos[i].Key)
				return err
			})
			if errors.Is(err, bucket.ErrNotFound) {
				return // deleted since it was listed
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
				return
			}
			infos[i].SHA256, infos[i].ContentType, infos[i].ContentEncoding = st.SHA256, st.ContentType, st.ContentEncoding
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
