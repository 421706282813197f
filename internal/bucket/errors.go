package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotFound: no object under the key.
	ErrNotFound = errors.New("object not found")
	// ErrForbidden: the store refused access (HTTP 403). S3 answers a HEAD
	// or GET of a missing key with 403 when the caller may not list the
	// bucket; Exists can count it as missing.
	ErrForbidden = errors.New("access denied")
	// ErrInvalidKey: the key was rejected by ValidateKey.
	ErrInvalidKey = errors.New("invalid key")
	// ErrSizeMismatch: the body was not as long as the size given.
	ErrSizeMismatch = errors.New("body size differs from the declared size")
	// ErrChecksumMismatch: the body's SHA-256 differs from PutOptions.SHA256.
	ErrChecksumMismatch = errors.New("body SHA-256 differs from the expected one")
	// ErrNotRewindable: a Put failed with a transient error after part of
	// its body was consumed, and the body could not be rewound to try
	// again (see Rewinder). The caller may start over with a new body.
	ErrNotRewindable = errors.New("body cannot be rewound to retry")
	// ErrTooManyParts: the object needs more than MaxParts parts.
	ErrTooManyParts = errors.New("object would exceed the 10,000-part limit")
	// ErrReadOnly: a write (Put, PutResumable, Delete, AbortUpload) to a
	// store that can only be read, such as a binary cache read over
	// http(s)://.
	ErrReadOnly = errors.New("the store is read-only")
	// ErrNoListing: List on a store that cannot list its objects, such as
	// one read over http(s)://.
	ErrNoListing = errors.New("the store cannot list its objects")
)

// Error is the error of a bucket operation on one object (or prefix).
type Error struct {
	Op  string // "stat", "get", "put", "delete", "list", "abort upload"
	URL string // the object's URL, e.g. s3://bucket/prefix/key
	Err error
}

func (e *Error) Error() string { return e.Op + " " + e.URL + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ObjectURL is the URL of key in b, for messages.
func ObjectURL(b Bucket, key string) string {
	s := b.String()
	if key == "" {
		return s
	}
	return strings.TrimSuffix(s, "/") + "/" + key
}

// ServerError is an error answer from an object store's server.
type ServerError struct {
	StatusCode int    // HTTP status
	Code       string // S3 error code (SlowDown, NoSuchBucket, …), if any
	Message    string // the server's message; never holds credentials
	RequestID  string
	// Delay is the server's Retry-After on a 429 or 503 answer, 0 if it
	// gave none; the retry policy waits that long (retry.RetryAfter).
	Delay time.Duration
}

// RetryAfter implements retry.RetryAfter.
func (e *ServerError) RetryAfter() time.Duration { return e.Delay }

func (e *ServerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// Is lets errors.Is(err, ErrNotFound) and ErrForbidden match server answers.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == 404 && e.Code != "NoSuchBucket" && e.Code != "NoSuchUpload"
	case ErrForbidden:
		return e.StatusCode == 403
	}
	return false
}

// BodyError is a failure to read the body given to Put: the caller's
// source failed, not the store, so it is never retried.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "read body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// PermanentError marks an error that must not be retried even though the
// error it wraps looks transient.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that IsTransient reports false.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsTransient reports whether err is worth retrying: a connection reset,
// refused or aborted, a broken pipe, a server that hung up mid-answer, a
// network timeout, an HTTP 5xx, 429 or 408, or an S3 SlowDown /
// RequestTimeout / InternalError / ServiceUnavailable code. This is the one
// place that decides it for object stores, for the retry decorator and
// the S3 requests alike; how long to wait is the shared retry.Policy's.
// Cancellation, not-found, access denied, invalid keys, size and checksum
// mismatches, body read errors and writes to a read-only store are
// permanent.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var perm *PermanentError
	var body *BodyError
	switch {
	case errors.As(err, &perm), errors.As(err, &body):
		return false
	case errors.Is(err, context.Canceled),
		errors.Is(err, ErrInvalidKey),
		errors.Is(err, ErrSizeMismatch),
		errors.Is(err, ErrChecksumMismatch),
		errors.Is(err, ErrNotRewindable),
		errors.Is(err, ErrTooManyParts),
		errors.Is(err, ErrReadOnly),
		errors.Is(err, ErrNoListing):
		return false
	}
	var se *ServerError
	if errors.As(err, &se) {
		switch se.Code {
		case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed":
			return true
		}
		return se.StatusCode >= 500 || se.StatusCode == 429 || se.StatusCode == 408
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
		return false
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ENETDOWN),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) && errors.Is(ue.Err, io.EOF) {
		// The server closed the connection before answering.
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection reset by peer", "broken pipe", "server closed idle connection", "transport connection broken", "http2: server sent GOAWAY"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
