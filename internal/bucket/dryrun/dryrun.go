// Package dryrun is a bucket.Bucket decorator for `--dry-run`: it records
// the writes (puts, deletes, aborts) it is asked for and performs none of
// them. Reads go to the real bucket, so "already present" decisions are
// the real ones, overlaid with the recorded writes: a key put in the dry
// run is seen by Stat and List with the recorded size and checksum, a
// deleted one is not seen. Get of a key put in the dry run fails (there
// are no bytes to return). A Put reads its body to the end (so a producer
// writing into a pipe is not left blocked) and records its size and
// SHA-256.
package dryrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/releng-project/releng/internal/bucket"
)

// Op is a write the dry run did not perform.
type Op struct {
	Kind string // "put", "delete", "abort upload"
	Key  string
	URL  string
	// For "put": what would have been stored.
	Size            int64
	SHA256          string
	ContentType     string
	ContentEncoding string
	// UploadID for "abort upload".
	UploadID string
}

func (o Op) String() string {
	switch o.Kind {
	case "put":
		return fmt.Sprintf("would put %s (%d bytes)", o.URL, o.Size)
	case "abort upload":
		return fmt.Sprintf("would abort upload %s of %s", o.UploadID, o.URL)
	}
	return "would " + o.Kind + " " + o.URL
}

// ErrNoContent is returned by Get for a key only put in the dry run.
var ErrNoContent = errors.New("dry run: object not actually written")

// Bucket is the dry-run decorator.
type Bucket struct {
	b    bucket.Bucket
	onOp func(Op)

	mu      sync.Mutex
	ops     []Op
	overlay map[string]*bucket.ObjectInfo // nil value: deleted
}

// New returns b in dry-run mode; onOp, if set, is called for each write
// as it is recorded.
func New(b bucket.Bucket, onOp func(Op)) *Bucket {
	return &Bucket{b: b, onOp: onOp, overlay: map[string]*bucket.ObjectInfo{}}
}

// Ops returns the writes recorded so far, in order.
func (d *Bucket) Ops() []Op {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ops)
}

func (d *Bucket) record(op Op, key string, info *bucket.ObjectInfo) {
	op.Key, op.URL = key, bucket.ObjectURL(d.b, key)
	d.mu.Lock()
	d.ops = append(d.ops, op)
	if op.Kind != "abort upload" {
		d.overlay[key] = info
	}
	d.mu.Unlock()
	if d.onOp != nil {
		d.onOp(op)
	}
}

// String implements bucket.Bucket.
func (d *Bucket) String() string { return d.b.String() }

func (d *Bucket) lookup(key string) (*bucket.ObjectInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, ok := d.overlay[key]
	return info, ok
}

func (d *Bucket) fail(op, key string, err error) error {
	return &bucket.Error{Op: op, URL: bucket.ObjectURL(d.b, key), Err: err}
}

// Stat implements bucket.Bucket.
func (d *Bucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, d.fail("stat", key, err)
	}
	if info, ok := d.lookup(key); ok {
		if info == nil {
			return bucket.ObjectInfo{}, d.fail("stat", key, bucket.ErrNotFound)
		}
		return *info, nil
	}
	return d.b.Stat(ctx, key)
}

// Get implements bucket.Bucket.
func (d *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return nil, d.fail("get", key, err)
	}
	if info, ok := d.lookup(key); ok {
		if info == nil {
			return nil, d.fail("get", key, bucket.ErrNotFound)
		}
		return nil, d.fail("get", key, ErrNoContent)
	}
	return d.b.Get(ctx, key)
}

// Put implements bucket.Bucket: it reads the body, checks it as a real
// Put would, and records it.
func (d *Bucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, &bucket.SourceReader{R: body})
	if err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := bucket.CheckSize(size, n, size >= 0 && n > size); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	if err := bucket.CheckSHA256(opts.SHA256, sum); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	info := bucket.ObjectInfo{Key: key, Size: n, SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, ModTime: time.Now()}
	d.record(Op{Kind: "put", Size: n, SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding}, key, &info)
	return info, nil
}

// PutResumable implements bucket.Bucket: it records a put of size bytes
// without reading the body (or reporting parts).
func (d *Bucket) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, d.fail("put", key, err)
	}
	info := bucket.ObjectInfo{Key: key, Size: size, SHA256: opts.SHA256, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, ModTime: time.Now()}
	d.record(Op{Kind: "put", Size: size, SHA256: opts.SHA256, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding}, key, &info)
	return info, nil
}

// Delete implements bucket.Bucket.
func (d *Bucket) Delete(ctx context.Context, key string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return d.fail("delete", key, err)
	}
	d.record(Op{Kind: "delete"}, key, nil)
	return nil
}

// AbortUpload implements bucket.Bucket.
func (d *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return d.fail("abort upload", key, err)
	}
	d.record(Op{Kind: "abort upload", UploadID: uploadID}, key, nil)
	return nil
}

// List implements bucket.Bucket: the real listing with the recorded puts
// and deletes applied.
func (d *Bucket) List(ctx context.Context, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	real, err := d.b.List(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.overlay) == 0 {
		return real, nil
	}
	objects := map[string]bucket.ObjectInfo{}
	prefixes := map[string]bool{}
	// A real common prefix is kept even if the dry run deleted what it
	// knows under it: knowing it empty would take a listing below it.
	for _, o := range real {
		if o.IsPrefix {
			prefixes[o.Key] = true
		} else {
			objects[o.Key] = o
		}
	}
	for k, info := range d.overlay {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if !opts.Recursive {
			if i := strings.IndexByte(k[len(prefix):], '/'); i >= 0 {
				if info != nil {
					prefixes[k[:len(prefix)+i+1]] = true
				}
				continue
			}
		}
		if info == nil {
			delete(objects, k)
		} else {
			objects[k] = *info
		}
	}
	out := make([]bucket.ObjectInfo, 0, len(objects)+len(prefixes))
	for _, o := range objects {
		out = append(out, o)
	}
	for p := range prefixes {
		out = append(out, bucket.ObjectInfo{Key: p, IsPrefix: true})
	}
	slices.SortFunc(out, func(a, b bucket.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
