// Package bucket is releng's object-store layer: one Bucket interface for
// the releases and docs buckets and the Nix binary cache, whatever holds
// them. Implementations are sibling packages — dir (a local directory, also
// a file:// binary cache stock Nix reads), s3 (AWS, MinIO, Garage, R2
// through minio-go) and httpstore (a store read over http(s)://,
// read-only) — and the retry and limit (concurrency) decorators wrap any
// Bucket and are Buckets themselves. location is the one place that turns
// a URI into a bucket, with the decorators; buckettest is the conformance
// suite every implementation and decorator passes.
//
// What differs between stores is answered by the store, not by its URI
// scheme: a write to a read-only store fails with ErrReadOnly, a List
// where there is no listing with ErrNoListing, and StatSHA256 (Checksum)
// gives an object's SHA-256 recorded or, where reading it back is cheap
// (a Hasher: a directory), computed.
//
// Keys are '/'-separated object names relative to the bucket (and to its
// prefix, for an S3 bucket given as s3://bucket/prefix); ValidateKey says
// which are accepted. Nothing is cached: Stat always asks the store, so an
// object written a moment ago by anyone is seen (no stale negative
// answers, as the binary cache's existence checks need).
//
// Errors are *Error values naming the operation and the object's URL; test
// them with errors.Is against ErrNotFound, ErrForbidden, ErrInvalidKey,
// ErrSizeMismatch, ErrChecksumMismatch, ErrNotRewindable, ErrReadOnly,
// ErrNoListing, and with IsTransient, the one place that decides what is
// worth retrying (how long to wait is the shared internal/retry policy's).
package bucket

import (
	"context"
	"io"
	"time"
)

// Bucket is an object store.
//
// All methods are safe for concurrent use. A write is atomic: a reader sees
// the old object, no object, or the complete new one, never part of it; a
// Put or PutResumable that fails leaves no new object behind.
type Bucket interface {
	// String is the bucket's URL for messages (s3://bucket/prefix,
	// file:///dir); it never contains credentials.
	String() string

	// Stat describes an object, or returns an error matching ErrNotFound
	// (or ErrForbidden, which S3 answers for a missing key when the caller
	// may not list the bucket: see Exists).
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// Get opens an object for reading; ErrNotFound as for Stat. The bytes
	// are the stored ones (a Content-Encoding is not undone).
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// Put stores the bytes of body under key, replacing any object there.
	// size is body's length, or -1 when unknown (a stream produced on the
	// fly); with a known size, a body that is shorter or longer is an error
	// matching ErrSizeMismatch and nothing is stored. With
	// opts.SHA256, a body with another checksum is an error matching
	// ErrChecksumMismatch and nothing is stored. A failure to read body is
	// a *BodyError. Put returns what it stored, with the SHA-256 it
	// computed on the way.
	Put(ctx context.Context, key string, body io.Reader, size int64, opts PutOptions) (ObjectInfo, error)

	// Delete removes an object. Deleting a key that does not exist is not
	// an error (as on S3).
	Delete(ctx context.Context, key string) error

	// List returns the objects whose keys start with prefix (a plain
	// string prefix, as on S3: "a/b" matches "a/b", "a/bc" and "a/b/c"),
	// sorted by key. Without opts.Recursive, keys below the next '/' after
	// prefix are folded into one entry with IsPrefix set and a Key ending
	// in '/'. Only objects are listed: an implementation's own bookkeeping
	// is hidden.
	List(ctx context.Context, prefix string, opts ListOptions) ([]ObjectInfo, error)

	// PutResumable stores size bytes read from body in parts of
	// opts.State.PartSize (or one chosen with ChoosePartSize), reporting
	// the upload through opts.OnStart and each stored part through
	// opts.OnPart, so that a caller that journals them can continue an
	// interrupted upload: called again with the saved State, it sends only
	// the parts the store does not already hold. When the saved upload no
	// longer exists (completed, aborted or expired), a new one is started
	// and announced through OnStart. A failed PutResumable leaves its
	// upload in place to be resumed; AbortUpload discards it.
	PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts ResumableOptions) (ObjectInfo, error)

	// AbortUpload discards an unfinished PutResumable upload and the parts
	// it holds. Aborting an upload that does not exist is not an error.
	AbortUpload(ctx context.Context, key, uploadID string) error
}

// ObjectInfo describes a stored object (or, in a non-recursive List, a
// common prefix).
type ObjectInfo struct {
	Key  string
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the object's bytes as recorded
	// when releng wrote it; empty when unknown (an object written by
	// another tool, a multipart stream written without PutOptions.SHA256,
	// or a List without ListOptions.SHA256 on S3).
	SHA256          string
	ContentType     string
	ContentEncoding string
	ModTime         time.Time
	// IsPrefix marks a common prefix in a non-recursive List.
	IsPrefix bool
}

// PutOptions are the optional attributes of a Put.
type PutOptions struct {
	// ContentType is the object's Content-Type ("" leaves it to the store:
	// S3 says application/octet-stream).
	ContentType string
	// ContentEncoding is the object's Content-Encoding (e.g. "zstd" for a
	// compressed narinfo); the bytes are stored as given.
	ContentEncoding string
	// SHA256 is the lowercase hex SHA-256 the body must have. It is checked
	// while the body is sent (a mismatch stores nothing) and recorded with
	// the object even where the store cannot compute it afterwards (an S3
	// multipart upload).
	SHA256 string
	// SizeHint bounds the length of a body of unknown size (size -1), so
	// the S3 part size can be chosen for it (ChoosePartSize); 0 assumes
	// MaxStreamSize. A stream longer than parts of that size allow fails.
	SizeHint int64
}

// ListOptions are the options of a List.
type ListOptions struct {
	// Recursive lists every object below prefix instead of folding
	// deeper keys into prefixes.
	Recursive bool
	// SHA256 fills ObjectInfo.SHA256 (and the content type and encoding)
	// from each object's recorded metadata. On S3 that costs one HEAD
	// request per object, as listings do not carry user metadata.
	SHA256 bool
}

// Part is one stored part of a resumable upload.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// UploadState is what a caller journals to resume a PutResumable.
type UploadState struct {
	// ID is the store's upload id; empty starts a new upload.
	ID string `json:"id,omitempty"`
	// PartSize is the size of every part but the last. For a new upload, 0
	// lets the bucket choose; a resumed upload keeps its saved size.
	PartSize int64 `json:"part_size,omitempty"`
	// SHA256 is the checksum of the body the upload was started with, as
	// recorded with the object; resuming with a body of another checksum
	// discards the upload and starts a new one.
	SHA256 string `json:"sha256,omitempty"`
	// Parts are the parts already stored, as reported by OnPart.
	Parts []Part `json:"parts,omitempty"`
}

// ResumableOptions are the options of a PutResumable.
type ResumableOptions struct {
	PutOptions
	// State is the journaled state of an interrupted upload of the same
	// key and body; the zero value starts a new upload.
	State UploadState
	// OnStart is called when a new upload is started, before any part is
	// sent, with its ID, part size and checksum. An error stops the
	// upload.
	OnStart func(UploadState) error
	// OnPart is called after each part is stored (one call at a time). An
	// error stops the upload, leaving it resumable.
	OnPart func(Part) error
}
