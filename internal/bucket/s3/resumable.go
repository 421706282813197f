package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/bucket"
)

// md5ETag matches a part ETag that is the MD5 of the part (what S3, MinIO,
// Garage and R2 return for unencrypted parts).
var md5ETag = regexp.MustCompile(`^[0-9a-f]{32}$`)

func trimETag(s string) string { return strings.ToLower(strings.Trim(s, `"`)) }

// PutResumable implements bucket.Bucket. On resume, the server's list of
// the upload's parts is authoritative: a part counts as sent when the
// server has it with the right size and its ETag is the MD5 of the body's
// bytes for it (or, for a server whose ETags are not MD5s, equals the
// journaled one). Every part is read and hashed, sent or not, so the
// object's SHA-256 is checked against opts.SHA256 before completing;
// without opts.SHA256, the body is hashed first (one more local read) so
// that the object records its SHA-256.
func (b *Bucket) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	info, err := b.putResumable(ctx, key, body, size, opts)
	return info, b.fail("put", key, err)
}

func (b *Bucket) putResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if size < 0 {
		return bucket.ObjectInfo{}, errors.New("a resumable upload needs the body's size")
	}
	if size == 0 {
		return b.put(ctx, key, strings.NewReader(""), 0, opts.PutOptions)
	}
	if opts.SHA256 == "" {
		// Multipart metadata is declared up front: hash the body first,
		// so the object records its checksum, and a body that changes
		// while it is sent is caught.
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(body, 0, size)); err != nil {
			return bucket.ObjectInfo{}, &bucket.BodyError{Err: err}
		}
		opts.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	st := opts.State
	if st.ID != "" && st.SHA256 != "" && st.SHA256 != opts.SHA256 {
		// The upload declared another checksum in its metadata: the
		// body changed since it started. Start over.
		b.abort(ctx, b.objectKey(key), st.ID)
		st = bucket.UploadState{PartSize: st.PartSize}
	}
	partSize := st.PartSize
	if partSize <= 0 {
		st.ID = "" // a state without its part size cannot be resumed
		partSize = bucket.ChoosePartSize(size, b.cfg.PartSize)
	}
	if partSize < bucket.MinPartSize || partSize > bucket.MaxPartSize {
		return bucket.ObjectInfo{}, fmt.Errorf("part size %d: must be between %d and %d bytes", partSize, bucket.MinPartSize, int64(bucket.MaxPartSize))
	}
	n := bucket.PartCount(size, partSize)
	if n > bucket.MaxParts {
		return bucket.ObjectInfo{}, fmt.Errorf("%w: %d bytes in parts of %d", bucket.ErrTooManyParts, size, partSize)
	}
	objKey := b.objectKey(key)

	// What the server already holds.
	onServer := map[int]minio.ObjectPart{}
	if st.ID != "" {
		parts, err := b.listParts(ctx, objKey, st.ID)
		switch {
		case err == nil:
			for _, p := range parts {
				onServer[p.PartNumber] = p
			}
		case isNoSuchUpload(err):
			st.ID = "" // completed, aborted or expired: start over
		default:
			// Listing parts refused: trust the journal.
			for _, p := range st.Parts {
				onServer[p.Number] = minio.ObjectPart{PartNumber: p.Number, ETag: p.ETag, Size: p.Size}
			}
		}
	}
	journaled := map[int]string{}
	for _, p := range st.Parts {
		journaled[p.Number] = trimETag(p.ETag)
	}
	if st.ID == "" {
		var id string
		err := b.retry(ctx, func(ctx context.Context) (err error) {
			id, err = b.core.NewMultipartUpload(ctx, b.cfg.Bucket, objKey, putOptions(opts.PutOptions, opts.SHA256))
			return err
		})
		if err != nil {
			return bucket.ObjectInfo{}, err
		}
		st = bucket.UploadState{ID: id, PartSize: partSize, SHA256: opts.SHA256}
		clear(onServer)
		clear(journaled)
		if opts.OnStart != nil {
			if err := opts.OnStart(st); err != nil {
				b.abort(ctx, objKey, id)
				return bucket.ObjectInfo{}, err
			}
		}
	}

	up := b.newUploader(ctx, objKey, st.ID, opts.OnPart)
	total := sha256.New()
	var readErr error
	for num := 1; num <= n; num++ {
		off := int64(num-1) * partSize
		ln := min(partSize, size-off)
		buf := &partBuf{}
		eof, err := buf.fill(io.NewSectionReader(body, off, ln), ln)
		if err == nil && eof && buf.n < ln {
			err = bucket.CheckSize(size, off+buf.n, false)
		} else if err != nil {
			err = &bucket.BodyError{Err: err}
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			buf.release()
			readErr = err
			break
		}
		buf.writeTo(total)
		if p, ok := onServer[num]; ok && p.Size == ln {
			etag := trimETag(p.ETag)
			if (md5ETag.MatchString(etag) && buf.md5Hex() == etag) || (!md5ETag.MatchString(etag) && journaled[num] == etag) {
				buf.release()
				up.done(num, p.ETag)
				continue
			}
		}
		if !up.submit(num, buf) {
			break
		}
	}
	if readErr != nil {
		up.stop()
	}
	parts, err := up.wait()
	if readErr != nil {
		return bucket.ObjectInfo{}, readErr
	}
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	sum := hex.EncodeToString(total.Sum(nil))
	if err := bucket.CheckSHA256(opts.SHA256, sum); err != nil {
		// Resuming would send the same wrong bytes.
		b.abort(ctx, objKey, st.ID)
		return bucket.ObjectInfo{}, err
	}
	mt, err := b.complete(ctx, objKey, st.ID, parts, size)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	return bucket.ObjectInfo{Key: key, Size: size, SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, ModTime: mt}, nil
}

// listParts lists every part of an upload.
func (b *Bucket) listParts(ctx context.Context, objKey, id string) ([]minio.ObjectPart, error) {
	var out []minio.ObjectPart
	marker := 0
	for {
		var res minio.ListObjectPartsResult
		err := b.retry(ctx, func(ctx context.Context) (err error) {
			res, err = b.core.ListObjectParts(ctx, b.cfg.Bucket, objKey, id, marker, 1000)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, res.ObjectParts...)
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			return out, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// AbortUpload implements bucket.Bucket.
func (b *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := bucket.ValidateKey(key); err != nil {
		return b.fail("abort upload", key, err)
	}
	if uploadID == "" {
		return nil
	}
	err := b.retry(ctx, func(ctx context.Context) error {
		return b.core.AbortMultipartUpload(ctx, b.cfg.Bucket, b.objectKey(key), uploadID)
	})
	if err == nil || isNoSuchUpload(err) || errors.Is(err, bucket.ErrNotFound) {
		return nil
	}
	return b.fail("abort upload", key, err)
}
