package dir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"

	"github.com/releng-project/releng/internal/bucket"
)

// A resumable upload is a hidden, preallocated file ".releng-tmp-up-ID" in
// the object's directory; parts are written at their offsets and the file
// is renamed over the key when complete. A part counts as already sent when
// the file holds exactly the body's bytes for it, so a resumed upload is
// correct whatever the journal says. The writer holds a flock on the file
// (leftovers.go): a staged upload a live process holds is not resumed by
// another, and one a killed process left is found by Leftovers.

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func stagingPath(key, id string) string { return path.Join(path.Dir(key), uploadPrefix+id) }

// PutResumable implements bucket.Bucket.
func (b *Bucket) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	info, err := b.putResumable(ctx, key, body, size, opts)
	return info, b.fail("put", key, err)
}

func (b *Bucket) putResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if err := bucket.ValidSHA256(opts.SHA256); err != nil {
		return bucket.ObjectInfo{}, err
	}
	if size < 0 {
		return bucket.ObjectInfo{}, errors.New("a resumable upload needs the body's size")
	}
	st := opts.State
	if st.ID != "" && !uploadIDRE.MatchString(st.ID) {
		st = bucket.UploadState{PartSize: st.PartSize} // not ours: start over
	}
	partSize := st.PartSize
	if partSize <= 0 {
		partSize = bucket.ChoosePartSize(size, b.PartSize)
	}
	if bucket.PartCount(size, partSize) > bucket.MaxParts {
		return bucket.ObjectInfo{}, fmt.Errorf("%w: %d bytes in parts of %d", bucket.ErrTooManyParts, size, partSize)
	}
	r, err := b.open(true)
	if err != nil {
		return bucket.ObjectInfo{}, err
	}
	var f *os.File
	var staging string
	if st.ID != "" {
		staging = stagingPath(key, st.ID)
		f, err = r.OpenFile(staging, os.O_RDWR, 0)
		if err == nil {
			// Taken only if no live process holds it (and a cleaner
			// did not just remove it).
			if err = lockFile(f, false); errors.Is(err, errNoLocks) {
				err = nil
			}
			if err == nil {
				err = sameFile(r, f, staging)
			}
			if err == nil {
				if fi, serr := f.Stat(); serr != nil || fi.Size() != size {
					err = errors.New("staged upload has another size")
				}
			}
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			f = nil // gone or unusable: start a new upload
		}
	}
	if f == nil {
		id := randomHex(16)
		staging = stagingPath(key, id)
		if err := r.MkdirAll(path.Dir(key), 0o755); err != nil && path.Dir(key) != "." {
			return bucket.ObjectInfo{}, fmt.Errorf("a parent of %q is an object: %w", key, err)
		}
		f, err = r.OpenFile(staging, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return bucket.ObjectInfo{}, err
		}
		if err := hold(r, f, staging); err != nil {
			f.Close()
			if !errors.Is(err, errGone) {
				r.Remove(staging)
			}
			return bucket.ObjectInfo{}, err
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			r.Remove(staging)
			return bucket.ObjectInfo{}, err
		}
		if opts.OnStart != nil {
			if err := opts.OnStart(bucket.UploadState{ID: id, PartSize: partSize, SHA256: opts.SHA256}); err != nil {
				f.Close()
				r.Remove(staging)
				return bucket.ObjectInfo{}, err
			}
		}
	}
	keep := true // on failure, leave the staged upload to be resumed
	defer func() {
		if f != nil {
			f.Close()
			if !keep {
				r.Remove(staging)
			}
		}
	}()

	total := sha256.New()
	n := bucket.PartCount(size, partSize)
	want := make([]byte, min(partSize, max(size, 1)))
	have := make([]byte, len(want))
	for i := 1; i <= n && size > 0; i++ {
		if err := ctx.Err(); err != nil {
			return bucket.ObjectInfo{}, err
		}
		off := int64(i-1) * partSize
		ln := min(partSize, size-off)
		w, h := want[:ln], have[:ln]
		if got, err := body.ReadAt(w, off); got < len(w) {
			if err == io.EOF {
				return bucket.ObjectInfo{}, bucket.CheckSize(size, off+int64(got), false)
			}
			return bucket.ObjectInfo{}, &bucket.BodyError{Err: err}
		}
		total.Write(w)
		if _, err := f.ReadAt(h, off); err == nil && bytes.Equal(w, h) {
			continue // already stored
		}
		if _, err := f.WriteAt(w, off); err != nil {
			return bucket.ObjectInfo{}, err
		}
		sum := sha256.Sum256(w)
		if opts.OnPart != nil {
			if err := opts.OnPart(bucket.Part{Number: i, ETag: hex.EncodeToString(sum[:16]), Size: ln}); err != nil {
				return bucket.ObjectInfo{}, err
			}
		}
	}
	sum := hex.EncodeToString(total.Sum(nil))
	if err := bucket.CheckSHA256(opts.SHA256, sum); err != nil {
		keep = false // resuming would send the same wrong bytes
		return bucket.ObjectInfo{}, err
	}
	g := f
	f = nil
	return b.commit(r, g, staging, key, record{SHA256: sum, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding})
}

// AbortUpload implements bucket.Bucket.
func (b *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := checkKey(key); err != nil {
		return b.fail("abort upload", key, err)
	}
	if !uploadIDRE.MatchString(uploadID) {
		return nil // never one of ours
	}
	r, err := b.open(false)
	if err != nil {
		return nil
	}
	if err := r.Remove(stagingPath(key, uploadID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return b.fail("abort upload", key, err)
	}
	return nil
}
