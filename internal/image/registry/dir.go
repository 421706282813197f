package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
)

// Dir is an OCI image layout directory used as a destination: blobs under
// blobs/sha256/, tags as entries of index.json annotated with
// org.opencontainers.image.ref.name.
type Dir struct {
	dir string
	mu  sync.Mutex // index.json
	c   counters
}

// OpenDir opens (creating it if needed) an OCI layout at dir.
func OpenDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("oci: needs a directory, e.g. oci:release/local/images")
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	marker := filepath.Join(dir, "oci-layout")
	if data, err := os.ReadFile(marker); err == nil {
		var v struct {
			Version string `json:"imageLayoutVersion"`
		}
		if json.Unmarshal(data, &v) != nil || v.Version == "" {
			return nil, fmt.Errorf("%s is not an OCI layout marker; use an empty directory for oci:", marker)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if err := fsutil.WriteFileAtomic(marker, []byte(oci.LayoutFile), 0o644); err != nil {
			return nil, err
		}
	} else {
		return nil, err
	}
	return &Dir{dir: dir}, nil
}

func (d *Dir) String() string { return OCIPrefix + d.dir }

// Stats says what was written so far.
func (d *Dir) Stats() Stats { return d.c.stats() }

// BlobPath is where the blob with digest lives.
func (d *Dir) BlobPath(digest string) string {
	return filepath.Join(d.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// HasBlob reports whether the blob file exists.
func (d *Dir) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := ValidDigest(digest); err != nil {
		return false, err
	}
	_, err := os.Stat(d.BlobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Mount never works for a directory.
func (d *Dir) Mount(ctx context.Context, digest string, from []string) (bool, error) {
	return false, nil
}

// PutBlob writes the blob, checking its digest.
func (d *Dir) PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error {
	if err := ValidDigest(digest); err != nil {
		return err
	}
	_, err := d.StreamBlob(ctx, func(w io.Writer) (string, error) {
		n, err := io.Copy(w, r)
		if err == nil && size >= 0 && n != size {
			err = fmt.Errorf("blob %s: %d bytes, %d expected", digest, n, size)
		}
		return digest, err
	})
	return err
}

// StreamBlob writes a temporary file and renames it to its digest.
func (d *Dir) StreamBlob(ctx context.Context, write func(io.Writer) (string, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(d.dir, "blobs", "sha256"), ".tmp-")
	if err != nil {
		return 0, fmt.Errorf("OCI layout %s: %w", d.dir, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	digest, err := write(cw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cw.n, err
	}
	if err := ValidDigest(digest); err != nil {
		return cw.n, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return cw.n, fmt.Errorf("%w: the bytes written have digest %s, not %s", ErrDigestMismatch, got, digest)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return cw.n, err
	}
	if err := os.Rename(tmp.Name(), d.BlobPath(digest)); err != nil {
		return cw.n, err
	}
	d.c.uploaded.Add(1)
	d.c.bytes.Add(cw.n)
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// PutManifest writes the body as a blob and, for a tag, points index.json's
// entry for that tag at it (replacing an older one).
func (d *Dir) PutManifest(ctx context.Context, ref, mediaType string, body []byte) error {
	digest := oci.Digest(body)
	if ValidDigest(ref) == nil && ref != digest {
		return fmt.Errorf("%w: manifest has digest %s, not %s", ErrDigestMismatch, digest, ref)
	}
	if ValidDigest(ref) != nil {
		if err := ValidTag(ref); err != nil {
			return err
		}
	}
	if ok, _ := d.HasBlob(ctx, digest); !ok {
		if err := fsutil.WriteFileAtomic(d.BlobPath(digest), body, 0o644); err != nil {
			return err
		}
	}
	d.c.manifests.Add(1)
	if ValidDigest(ref) == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	idx, err := d.ReadIndex()
	if err != nil {
		return err
	}
	var kept []oci.Descriptor
	for _, m := range idx.Manifests {
		if m.Annotations[oci.AnnotationRefName] != ref {
			kept = append(kept, m)
		}
	}
	kept = append(kept, oci.Descriptor{MediaType: mediaType, Digest: digest, Size: int64(len(body)), Annotations: map[string]string{oci.AnnotationRefName: ref}})
	sort.SliceStable(kept, func(i, j int) bool {
		return kept[i].Annotations[oci.AnnotationRefName] < kept[j].Annotations[oci.AnnotationRefName]
	})
	idx.Manifests = kept
	return d.writeIndex(idx)
}

// ReadIndex reads index.json (an empty index if there is none).
func (d *Dir) ReadIndex() (*oci.Index, error) {
	p := filepath.Join(d.dir, "index.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: not an OCI index: %v (remove it, or use another oci: directory)", p, err)
	}
	return &idx, nil
}

func (d *Dir) writeIndex(idx *oci.Index) error {
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(d.dir, "index.json"), data, 0o644)
}

// CheckPush checks that the directory is writable.
func (d *Dir) CheckPush(ctx context.Context) error {
	f, err := os.CreateTemp(filepath.Join(d.dir, "blobs", "sha256"), ".check-")
	if err != nil {
		return fmt.Errorf("OCI layout %s is not writable: %w", d.dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
