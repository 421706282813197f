package bucket

import (
	"context"
	"errors"
	"fmt"
)

// Hasher is implemented by a Bucket that can compute the SHA-256 of a
// stored object cheaply, by reading it where it lies: a local directory.
// A remote store does not implement it (reading an object back costs its
// download). Decorators implement it by forwarding to the bucket they
// wrap, and answer errors.ErrUnsupported when that one does not.
type Hasher interface {
	// HashObject reads the object and returns its description with
	// SHA256 computed from the bytes read and Size their number (a file
	// replaced meanwhile is hashed whole, old or new, never mixed).
	// ErrNotFound as for Stat.
	HashObject(ctx context.Context, key string) (ObjectInfo, error)
}

// HashObject calls b's HashObject, or returns an error matching
// errors.ErrUnsupported when b is not a Hasher.
func HashObject(ctx context.Context, b Bucket, key string) (ObjectInfo, error) {
	h, ok := b.(Hasher)
	if !ok {
		return ObjectInfo{}, &Error{Op: "hash", URL: ObjectURL(b, key), Err: fmt.Errorf("%w: reading the object back to hash it is not cheap here", errors.ErrUnsupported)}
	}
	return h.HashObject(ctx, key)
}

// StatSHA256 is Stat with the object's SHA-256 whenever it can be had
// cheaply: the one recorded with the object, or else, on a store where
// reading the object back is cheap (a Hasher, such as a file:// binary
// cache that keeps no records), the one computed from its bytes. The
// SHA256 is empty when neither is available (an object another tool
// wrote to S3 or an HTTP store).
func StatSHA256(ctx context.Context, b Bucket, key string) (ObjectInfo, error) {
	info, err := b.Stat(ctx, key)
	if err != nil || info.SHA256 != "" {
		return info, err
	}
	h, err := HashObject(ctx, b, key)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return info, nil
	case err != nil:
		return ObjectInfo{}, err
	}
	info.Size, info.SHA256 = h.Size, h.SHA256
	return info, nil
}

// Checksum is the SHA-256 (lowercase hex) of the object at key when it
// can be had cheaply, as StatSHA256 finds it; "" when it cannot. A
// missing object is an error matching ErrNotFound.
func Checksum(ctx context.Context, b Bucket, key string) (string, error) {
	info, err := StatSHA256(ctx, b, key)
	return info.SHA256, err
}
