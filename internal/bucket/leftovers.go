package bucket

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leftover is an unfinished write that a releng which ended before
// finishing it (killed, interrupted, its machine lost) left in a store: an
// S3 multipart upload never completed nor aborted, or a directory bucket's
// temporary or staging file (".releng-tmp-…") never renamed over its key.
type Leftover struct {
	// Key is the object the upload was for (S3), or the path of the
	// temporary file below the bucket's root (a directory bucket: a
	// temporary file's name does not say its key, only its directory).
	Key string `json:"key"`
	// UploadID is the store's id of a multipart upload ("" for a file).
	UploadID string `json:"upload_id,omitempty"`
	// Started is when the upload was started (a file: last written).
	Started time.Time `json:"started"`
	// Size is the bytes the leftover holds when known (a file), else 0.
	Size int64 `json:"size,omitempty"`
}

func (l Leftover) String() string {
	if l.UploadID != "" {
		return fmt.Sprintf("multipart upload %s of %s", l.UploadID, l.Key)
	}
	return "temporary file " + l.Key
}

// Cleaner is implemented by a Bucket that can find and remove the
// unfinished writes releng left in it. Each implementation recognises
// only its own: an S3 bucket the multipart uploads of exactly the keys
// asked about (another tool's upload of another key is never touched); a
// directory bucket the files named ".releng-tmp-…" (a name reserved for
// releng) in the directories of those keys and of their metadata records,
// that no live process holds (each writer holds a flock on its file while
// it writes: one killed lets go of it). Decorators implement it by
// forwarding to the bucket they wrap, and answer errors.ErrUnsupported
// when that one does not.
type Cleaner interface {
	// Leftovers lists the unfinished writes of releng's the bucket holds
	// for objs: the objects a plan writes, each with its size or a bound
	// of it (-1: unknown). An S3 bucket asks about the uploads of those
	// larger than MinPartSize or of unknown size (releng sends smaller
	// ones in one PUT), one key at a time (MinIO lists the uploads of one
	// key, not of a prefix).
	Leftovers(ctx context.Context, objs []ObjectInfo) ([]Leftover, error)
	// RemoveLeftover discards one (abort the upload, remove the file). A
	// leftover already gone, or (a file) taken again by a live writer
	// meanwhile, is not an error: it is kept, or was already removed.
	RemoveLeftover(ctx context.Context, l Leftover) error
}

// Leftovers calls b's Leftovers, or returns an error matching
// errors.ErrUnsupported when b is not a Cleaner.
func Leftovers(ctx context.Context, b Bucket, objs []ObjectInfo) ([]Leftover, error) {
	c, ok := b.(Cleaner)
	if !ok {
		return nil, &Error{Op: "list leftovers", URL: b.String(), Err: fmt.Errorf("%w: the store keeps no unfinished writes releng can find", errors.ErrUnsupported)}
	}
	return c.Leftovers(ctx, objs)
}

// RemoveLeftover calls b's RemoveLeftover, or returns an error matching
// errors.ErrUnsupported when b is not a Cleaner.
func RemoveLeftover(ctx context.Context, b Bucket, l Leftover) error {
	c, ok := b.(Cleaner)
	if !ok {
		return &Error{Op: "remove leftover", URL: b.String(), Err: errors.ErrUnsupported}
	}
	return c.RemoveLeftover(ctx, l)
}

// RemoveLeftovers removes the unfinished writes releng left in b for objs
// (the objects a plan writes, as for Cleaner.Leftovers), those started
// before since (zero: all: on S3, where no lock tells a live upload from an
// abandoned one, since spares the uploads of a concurrent writer started
// after the caller), and
// returns what it removed. A bucket that is not a Cleaner (an HTTP store)
// has none. Callers run it once what they sent is complete: an upload of
// theirs still in place then is one nobody will finish.
func RemoveLeftovers(ctx context.Context, b Bucket, objs []ObjectInfo, since time.Time) ([]Leftover, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	found, err := Leftovers(ctx, b, objs)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []Leftover
	for _, l := range found {
		if !since.IsZero() && !l.Started.Before(since) {
			continue
		}
		if err := RemoveLeftover(ctx, b, l); err != nil {
			return removed, err
		}
		removed = append(removed, l)
	}
	return removed, nil
}
