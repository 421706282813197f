package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Rewinder is a Put body that can start over from its beginning. The retry
// decorator rewinds a body before each new attempt of a failed Put; it
// rewinds any io.Seeker too (to the offset it had when Put was called).
// A body that is neither is retried only when the failed attempt read
// nothing from it; otherwise Put fails with ErrNotRewindable.
type Rewinder interface {
	io.Reader
	Rewind() error
}

// Reopener is a Rewinder over a source that can be produced again, such as
// a NAR serialised and compressed on the fly: Rewind closes the current
// reader and the next Read calls open for a fresh one.
type Reopener struct {
	open func() (io.ReadCloser, error)
	cur  io.ReadCloser
}

// Reopen returns a Reopener calling open, lazily, for each attempt.
func Reopen(open func() (io.ReadCloser, error)) *Reopener { return &Reopener{open: open} }

func (r *Reopener) Read(p []byte) (int, error) {
	if r.cur == nil {
		rc, err := r.open()
		if err != nil {
			return 0, err
		}
		r.cur = rc
	}
	return r.cur.Read(p)
}

// Rewind closes the current reader; the next Read opens a new one.
func (r *Reopener) Rewind() error { return r.Close() }

// Close closes the current reader, if any.
func (r *Reopener) Close() error {
	if r.cur == nil {
		return nil
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}

// Rewind returns a function that puts body back where it is now, or nil
// if body cannot be rewound (neither a Rewinder nor an io.Seeker).
func Rewind(body io.Reader) (func() error, error) {
	switch b := body.(type) {
	case Rewinder:
		return b.Rewind, nil
	case io.Seeker:
		start, err := b.Seek(0, io.SeekCurrent)
		if err != nil {
			// A pipe or terminal: an *os.File that cannot seek.
			return nil, nil
		}
		return func() error {
			_, err := b.Seek(start, io.SeekStart)
			return err
		}, nil
	}
	return nil, nil
}

// SourceReader wraps a Put body: read errors become *BodyError (so they
// are not mistaken for store failures) and the bytes read are counted.
type SourceReader struct {
	R io.Reader
	N int64
}

func (s *SourceReader) Read(p []byte) (int, error) {
	n, err := s.R.Read(p)
	s.N += int64(n)
	if err != nil && err != io.EOF {
		var be *BodyError
		if !errors.As(err, &be) {
			err = &BodyError{Err: err}
		}
	}
	return n, err
}

// CheckSize returns an ErrSizeMismatch error when a body declared as size
// bytes (size >= 0) gave got bytes; extra reports that it had more.
func CheckSize(size, got int64, extra bool) error {
	switch {
	case size < 0:
		return nil
	case extra:
		return fmt.Errorf("%w: body is longer than %d bytes", ErrSizeMismatch, size)
	case got != size:
		return fmt.Errorf("%w: body has %d bytes, %d declared", ErrSizeMismatch, got, size)
	}
	return nil
}

// CheckSHA256 returns an ErrChecksumMismatch error when want is set and
// differs from got.
func CheckSHA256(want, got string) error {
	if want != "" && want != got {
		return fmt.Errorf("%w: body has sha256 %s, %s expected", ErrChecksumMismatch, got, want)
	}
	return nil
}

// ValidSHA256 checks that s is empty or 64 lowercase hex digits.
func ValidSHA256(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 64 {
		return fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", s)
		}
	}
	return nil
}

// Exists reports whether key exists in b. With forbiddenIsMissing, an
// access-denied answer counts as "missing": S3 answers 403 instead of 404
// for a missing key when the caller may read objects but not list the
// bucket, which is how many public binary caches are set up. Exists asks
// the store every time; nothing is cached.
func Exists(ctx context.Context, b Bucket, key string, forbiddenIsMissing bool) (bool, error) {
	_, err := b.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	case forbiddenIsMissing && errors.Is(err, ErrForbidden):
		return false, nil
	}
	return false, err
}

// SameObject reports whether info describes an object of the given size
// and SHA-256 (lowercase hex) — "already present, not sent again". An
// object whose checksum is unknown is not the same.
func SameObject(info ObjectInfo, size int64, sha256 string) bool {
	return info.Size == size && info.SHA256 != "" && info.SHA256 == sha256
}
