package s3

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/bucket"
)

// putOptions are the minio-go options of a write: no streaming signature,
// no checksum headers.
func putOptions(opts bucket.PutOptions, sha string) minio.PutObjectOptions {
	o := minio.PutObjectOptions{
		ContentType:          opts.ContentType,
		ContentEncoding:      opts.ContentEncoding,
		DisableContentSha256: true, // we pass the payload hash ourselves
		DisableMultipart:     true,
	}
	if sha != "" {
		o.UserMetadata = map[string]string{metaSHA256: sha}
	}
	return o
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put implements bucket.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	info, err := b.put(ctx, key, body, size, opts)
	return info, b.fail("put", key, err)
}

// partSizeFor is the part size of an object of size bytes (-1: unknown,
// bounded by hint when set).
func (b *Bucket) partSizeFor(size, hint int64) int64 {
	if size < 0 && hint > 0 {
		size = hint
	}
	return bucket.ChoosePartSize(size, b.cfg.PartSize)
}

func (b *Bucket) put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateKey(key); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, err
	}
	partSize := b.partSizeFor(size, opts.SizeHint)
	br := bufio.NewReaderSize(ctxReader{ctx, &bucket.SourceReader{R: body}}, 256<<10)
	more := func() (bool, error) {
		_, err := br.Peek(1)
		if err == io.EOF {
			return false, nil
		}
		return err == nil, err
	}
	limit := partSize
	if size >= 0 && size < limit {
		limit = size
	}
	first := &partBuf{}
	if _, err := first.fill(br, limit); err != nil {
		first.release()
		return bucket.ObjectInfo{}, err
	}
	if size < 0 || size <= partSize || first.n < partSize {
		extra, err := more()
		if err != nil {
			first.release()
			return bucket.ObjectInfo{}, err
		}
		if size >= 0 || !extra {
			defer first.release()
			if err := bucket.CheckSize(size, first.n, extra); err != nil {
				return bucket.ObjectInfo{}, err
			}
			return b.putSingle(ctx, key, first, opts)
		}
	}
	// first is the uploader's from here on.
	return b.putMultipart(ctx, key, br, more, first, size, partSize, opts)
}

// payloadHash is the x-amz-content-sha256 of a part: its SHA-256 over
// plain HTTP, where nothing else protects the body on the wire, and ""
// (UNSIGNED-PAYLOAD) over TLS, which does, as AWS's SDKs and minio-go do.
// Over TLS each part's bytes are then hashed once (for the object's
// SHA-256) instead of twice. A single PUT always signs its payload: the
// object's SHA-256 is computed anyway.
func (b *Bucket) payloadHash(buf *partBuf) string {
	if b.secure {
		return ""
	}
	return buf.sha256Hex()
}

// putSingle sends buf in one PUT.
func (b *Bucket) putSingle(ctx context.Context, key string, buf *partBuf, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	sum := buf.sha256Hex()
	if err := bucket.CheckSHA256(opts.SHA256, sum); err != nil {
		return bucket.ObjectInfo{}, err
	}
	var ui minio.UploadInfo
	err := b.retry(ctx, func(ctx context.Context) (err error) {
		ui, err = b.core.PutObject(ctx, b.cfg.Bucket, b.objectKey(key), buf.reader(), buf.n, "", sum, putOptions(opts, sum))
		return err
	})
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	return bucket.ObjectInfo{Key: key, Size: buf.n, SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, ModTime: ui.LastModified}, nil
}

// putMultipart sends first and the rest of r (size bytes in all, or up to
// EOF when size < 0) as a multipart upload, aborted on failure.
func (b *Bucket) putMultipart(ctx context.Context, key string, r io.Reader, more func() (bool, error), first *partBuf, size, partSize int64, opts bucket.PutOptions) (info bucket.ObjectInfo, err error) {
	objKey := b.objectKey(key)
	var id string
	err = b.retry(ctx, func(ctx context.Context) (err error) {
		id, err = b.core.NewMultipartUpload(ctx, b.cfg.Bucket, objKey, putOptions(opts, opts.SHA256))
		return err
	})
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer func() {
		if err != nil {
			b.abort(ctx, objKey, id)
		}
	}()
	up := b.newUploader(ctx, objKey, id, nil)
	total := sha256.New()
	var sent int64
	var readErr error
	buf := first
	for num := 1; ; num++ {
		if num > 1 {
			limit := partSize
			if size >= 0 {
				limit = min(partSize, size-sent)
			}
			buf = &partBuf{}
			if _, readErr = buf.fill(r, limit); readErr != nil || buf.n == 0 {
				buf.release()
				break
			}
		}
		if num > bucket.MaxParts {
			buf.release()
			readErr = fmt.Errorf("%w: parts of %d bytes (give a larger SizeHint)", bucket.ErrTooManyParts, partSize)
			break
		}
		buf.writeTo(total)
		sent += buf.n
		full := buf.n == partSize
		if !up.submit(num, buf) {
			break
		}
		if !full || (size >= 0 && sent >= size) {
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
	if size >= 0 {
		extra, err := more()
		if err != nil {
			return bucket.ObjectInfo{}, err
		}
		if err := bucket.CheckSize(size, sent, extra); err != nil {
			return bucket.ObjectInfo{}, err
		}
	}
	sum := hex.EncodeToString(total.Sum(nil))
	if err := bucket.CheckSHA256(opts.SHA256, sum); err != nil {
		return bucket.ObjectInfo{}, err
	}
	mt, err := b.complete(ctx, objKey, id, parts, sent)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	return bucket.ObjectInfo{Key: key, Size: sent, SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, ModTime: mt}, nil
}

// complete finishes a multipart upload. When a retried completion finds
// the upload gone, the first attempt succeeded if the object now has the
// expected size.
func (b *Bucket) complete(ctx context.Context, objKey, id string, parts []minio.CompletePart, size int64) (time.Time, error) {
	slices.SortFunc(parts, func(x, y minio.CompletePart) int { return x.PartNumber - y.PartNumber })
	var ui minio.UploadInfo
	attempts := 0
	err := b.retry(ctx, func(ctx context.Context) (err error) {
		attempts++
		ui, err = b.core.CompleteMultipartUpload(ctx, b.cfg.Bucket, objKey, id, parts, minio.PutObjectOptions{})
		return err
	})
	if err != nil && attempts > 1 && isNoSuchUpload(err) {
		if oi, serr := b.client.StatObject(ctx, b.cfg.Bucket, objKey, minio.StatObjectOptions{}); serr == nil && oi.Size == size {
			return oi.LastModified, nil
		}
	}
	return ui.LastModified, err
}

func isNoSuchUpload(err error) bool {
	var se *bucket.ServerError
	if errors.As(err, &se) {
		return se.Code == "NoSuchUpload"
	}
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code == "NoSuchUpload"
}

// abort discards a multipart upload, even when ctx has ended.
func (b *Bucket) abort(ctx context.Context, objKey, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = b.retry(actx, func(actx context.Context) error { return b.core.AbortMultipartUpload(actx, b.cfg.Bucket, objKey, id) })
}

// uploader sends the parts of one multipart upload, PartConcurrency at a
// time, each retried from its buffer.
type uploader struct {
	b      *Bucket
	objKey string
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	onPart func(bucket.Part) error

	mu    sync.Mutex
	parts []minio.CompletePart
	err   error
}

func (b *Bucket) newUploader(ctx context.Context, objKey, id string, onPart func(bucket.Part) error) *uploader {
	ctx, cancel := context.WithCancel(ctx)
	return &uploader{b: b, objKey: objKey, id: id, ctx: ctx, cancel: cancel, sem: make(chan struct{}, b.cfg.PartConcurrency), onPart: onPart}
}

func (u *uploader) setErr(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
	u.cancel()
}

// stop cancels the parts in flight; wait still has to be called.
func (u *uploader) stop() { u.cancel() }

// done records a part already on the server.
func (u *uploader) done(num int, etag string) {
	u.mu.Lock()
	u.parts = append(u.parts, minio.CompletePart{PartNumber: num, ETag: etag})
	u.mu.Unlock()
}

// submit uploads buf as part num in the background and releases it after.
// It blocks while PartConcurrency parts are in flight, and reports false
// (releasing buf) once the upload has failed.
func (u *uploader) submit(num int, buf *partBuf) bool {
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		buf.release()
		u.setErr(u.ctx.Err())
		return false
	}
	u.wg.Go(func() {
		defer func() { <-u.sem }()
		defer buf.release()
		sum := u.b.payloadHash(buf)
		var op minio.ObjectPart
		err := u.b.retry(u.ctx, func(ctx context.Context) (err error) {
			op, err = u.b.core.PutObjectPart(ctx, u.b.cfg.Bucket, u.objKey, u.id, num, buf.reader(), buf.n,
				minio.PutObjectPartOptions{Sha256Hex: sum, DisableContentSha256: true})
			return err
		})
		if err != nil {
			u.setErr(fmt.Errorf("part %d: %w", num, err))
			return
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		u.parts = append(u.parts, minio.CompletePart{PartNumber: num, ETag: op.ETag})
		if u.onPart != nil && u.err == nil {
			// Under the lock: one call at a time.
			if err := u.onPart(bucket.Part{Number: num, ETag: op.ETag, Size: buf.n}); err != nil {
				u.err = err
				u.cancel()
			}
		}
	})
	return true
}

// wait waits for the parts in flight and returns them all.
func (u *uploader) wait() ([]minio.CompletePart, error) {
	u.wg.Wait()
	u.cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.parts, u.err
}
