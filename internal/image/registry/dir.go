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
	dir      string
	readOnly bool
	mu       sync.Mutex // index.json
	c        counters
}

// OpenDir opens (creating it if needed) an OCI layout at dir.
func OpenDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s needs a directory, e.g. %srelease/local/images", OCIPrefix, OCIPrefix)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	found, err := checkMarker(dir)
	if err != nil {
		return nil, err
	}
	if !found {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, "oci-layout"), []byte(oci.LayoutFile), 0o644); err != nil {
			return nil, err
		}
	}
	return &Dir{dir: dir}, nil
}

// OpenDirReadOnly opens the OCI layout at dir to read it, creating
// nothing: a directory that does not exist reads as an empty layout.
func OpenDirReadOnly(dir string) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s needs a directory, e.g. %srelease/local/images", OCIPrefix, OCIPrefix)
	}
	if _, err := checkMarker(dir); err != nil {
		return nil, err
	}
	return &Dir{dir: dir, readOnly: true}, nil
}

// checkMarker checks dir's oci-layout file, if it has one.
func checkMarker(dir string) (found bool, err error) {
	marker := filepath.Join(dir, "oci-layout")
	data, err := fsutil.ReadFile(marker, fsutil.MaxSmallState)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var v struct {
		Version string `json:"imageLayoutVersion"`
	}
	if json.Unmarshal(data, &v) != nil || v.Version == "" {
		return false, fmt.Errorf("%s is not an OCI layout marker; use an empty directory for %s", marker, OCIPrefix)
	}
	return true, nil
}

// writable refuses writes to a layout opened read-only.
func (d *Dir) writable() error {
	if d.readOnly {
		return fmt.Errorf("OCI layout %s was opened to be read only", d.dir)
	}
	return nil
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
	if err := d.writable(); err != nil {
		return 0, err
	}
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
	if err := d.writable(); err != nil {
		return err
	}
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
	data, err := fsutil.ReadFile(p, fsutil.MaxManifestJSON)
	if errors.Is(err, os.ErrNotExist) {
		return &oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: not an OCI index: %v (remove it, or use another %s directory)", p, err, OCIPrefix)
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
	if err := d.writable(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(d.dir, "blobs", "sha256"), ".check-")
	if err != nil {
		return fmt.Errorf("OCI layout %s is not writable: %w", d.dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// StatBlob returns the size of the blob file.
func (d *Dir) StatBlob(ctx context.Context, digest string) (int64, bool, error) {
	if err := ValidDigest(digest); err != nil {
		return 0, false, err
	}
	st, err := os.Stat(d.BlobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return st.Size(), true, nil
}

// ReadBlob opens the blob file.
func (d *Dir) ReadBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, err
	}
	f, err := os.Open(d.BlobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: blob %s: %w", d, digest, ErrNotFound)
	}
	return f, err
}

// Resolve looks a tag up in index.json, or a digest up among the blobs.
func (d *Dir) Resolve(ctx context.Context, ref string) (oci.Descriptor, bool, error) {
	if ValidDigest(ref) == nil {
		desc, _, err := d.Manifest(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			return oci.Descriptor{}, false, nil
		}
		return desc, err == nil, err
	}
	if err := ValidTag(ref); err != nil {
		return oci.Descriptor{}, false, err
	}
	idx, err := d.ReadIndex()
	if err != nil {
		return oci.Descriptor{}, false, err
	}
	for _, m := range idx.Manifests {
		if m.Annotations[oci.AnnotationRefName] == ref {
			return m, true, nil
		}
	}
	return oci.Descriptor{}, false, nil
}

// Manifest reads the blob a tag or digest names; the descriptor's media
// type is the one index.json gives a tag, or else the document's own.
func (d *Dir) Manifest(ctx context.Context, ref string) (oci.Descriptor, []byte, error) {
	desc := oci.Descriptor{Digest: ref}
	if ValidDigest(ref) != nil {
		var found bool
		var err error
		if desc, found, err = d.Resolve(ctx, ref); err != nil {
			return oci.Descriptor{}, nil, err
		}
		if !found {
			return oci.Descriptor{}, nil, fmt.Errorf("%s: tag %s: %w", d, ref, ErrNotFound)
		}
	}
	f, err := d.ReadBlob(ctx, desc.Digest)
	if err != nil {
		return oci.Descriptor{}, nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, MaxManifest+1))
	if err != nil {
		return oci.Descriptor{}, nil, err
	}
	if len(body) > MaxManifest {
		return oci.Descriptor{}, nil, fmt.Errorf("%s: manifest %s is larger than %d bytes", d, desc.Digest, MaxManifest)
	}
	if desc.MediaType == "" {
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(body, &doc)
		desc.MediaType = doc.MediaType
	}
	if ValidDigest(ref) == nil {
		desc.Size = int64(len(body))
	}
	return desc, body, nil
}
