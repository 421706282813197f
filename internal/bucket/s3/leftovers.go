package s3

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/releng-project/releng/internal/bucket"
)

var _ bucket.Cleaner = (*Bucket)(nil)

// leftoverChecks bounds the ListMultipartUploads requests in flight.
const leftoverChecks = 16

// Leftovers implements bucket.Cleaner: the multipart uploads in progress
// of exactly the keys of objs that may have been sent in parts (larger
// than bucket.MinPartSize, or of unknown size), one ListMultipartUploads
// per key (MinIO answers only for a whole key, not a prefix), each tried
// once (the retry decorator retries). An upload of any other key, another
// tool's, is never listed.
func (b *Bucket) Leftovers(ctx context.Context, objs []bucket.ObjectInfo) ([]bucket.Leftover, error) {
	var keys []string
	for _, o := range objs {
		if (o.Size < 0 || o.Size > bucket.MinPartSize) && bucket.ValidateKey(o.Key) == nil {
			keys = append(keys, o.Key)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var (
		mu  sync.Mutex
		out []bucket.Leftover
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(leftoverChecks)
	for _, key := range keys {
		g.Go(func() error {
			found, err := b.uploadsOf(gctx, key)
			if err != nil {
				return b.fail("list multipart uploads", key, err)
			}
			mu.Lock()
			out = append(out, found...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y bucket.Leftover) int {
		if c := strings.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		return x.Started.Compare(y.Started)
	})
	return out, nil
}

// uploadsOf lists the multipart uploads in progress of key.
func (b *Bucket) uploadsOf(ctx context.Context, key string) ([]bucket.Leftover, error) {
	objKey := b.objectKey(key)
	var out []bucket.Leftover
	keyMarker, idMarker := "", ""
	for {
		var res minio.ListMultipartUploadsResult
		err := b.once(ctx, func(ctx context.Context) (err error) {
			res, err = b.core.ListMultipartUploads(ctx, b.cfg.Bucket, objKey, keyMarker, idMarker, "", 1000)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, u := range res.Uploads {
			if u.Key == objKey { // a prefix matches longer keys on AWS
				out = append(out, bucket.Leftover{Key: key, UploadID: u.UploadID, Started: u.Initiated})
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return out, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// RemoveLeftover implements bucket.Cleaner: it aborts the upload.
func (b *Bucket) RemoveLeftover(ctx context.Context, l bucket.Leftover) error {
	return b.AbortUpload(ctx, l.Key, l.UploadID)
}
