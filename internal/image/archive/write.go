// Package archive writes and reads docker-archives: the tarballs `docker
// save` writes, `docker load` and `skopeo copy docker-archive:` read, and
// Nix's dockerTools build (SPEC §8.1, §8.4).
//
// Write produces, from the same blobs as an OCI layout, a tar that is both
// a docker-archive (manifest.json) and an OCI layout (index.json,
// oci-layout, blobs/sha256/…), as Docker 25 and later write them, with the
// gzip-compressed layers inside.
//
// Inspect reads an archive from an untrusted source before anything of it
// is used: every entry name is checked (no absolute names, no "..", no
// links leaving the archive, no devices, no sparse files), documents are
// read with size limits, every layer is hashed and its diff ID checked
// against the image config. Nothing is ever written to disk.
package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/releng-project/releng/internal/image/oci"
)

// Blob is a blob to put in an archive.
type Blob struct {
	Digest string
	Size   int64
	// Open returns the blob's bytes.
	Open func() (io.ReadCloser, error)
}

// Image is what Write puts in an archive.
type Image struct {
	// RepoTag is NAME:TAG, what `docker load` tags the image as.
	RepoTag string
	// Tag is the tag alone, for index.json.
	Tag      string
	Manifest []byte // the OCI image manifest
	Config   Blob
	Layers   []Blob // in manifest order
}

var epoch = time.Unix(1, 0).UTC()

// Write writes the archive of img to w; the same image gives the same
// bytes. The archive is a tar holding the compressed layer blobs as they
// are: it is compressed (hence .tar.gz) without compressing anything twice,
// and readers that cannot take an archive compressed as a whole (skopeo
// 1.9, Debian 12's) read it directly. When w and the blobs are files, the
// blobs are copied by the kernel (copy_file_range).
func Write(w io.Writer, img Image) error {
	tw := &tarWriter{w: w}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.header(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	manifestDigest := oci.Digest(img.Manifest)
	written := map[string]bool{}
	blobs := append([]Blob{img.Config}, img.Layers...)
	blobs = append(blobs, Blob{Digest: manifestDigest, Size: int64(len(img.Manifest)), Open: bytesOpener(img.Manifest)})
	var layerNames []string
	for i, b := range blobs {
		name := "blobs/sha256/" + oci.Hex(b.Digest)
		if i > 0 && i <= len(img.Layers) {
			layerNames = append(layerNames, name)
		}
		if written[b.Digest] {
			continue
		}
		written[b.Digest] = true
		if err := tw.file(name, b); err != nil {
			return err
		}
	}
	index := oci.Index{SchemaVersion: 2, MediaType: oci.MediaTypeIndex, Manifests: []oci.Descriptor{{
		MediaType: oci.MediaTypeManifest, Digest: manifestDigest, Size: int64(len(img.Manifest)),
		Annotations: map[string]string{oci.AnnotationRefName: img.Tag, "io.containerd.image.name": img.RepoTag},
	}}}
	manifest := []dockerManifest{{Config: "blobs/sha256/" + oci.Hex(img.Config.Digest), RepoTags: []string{img.RepoTag}, Layers: layerNames}}
	for _, doc := range []struct {
		name string
		v    any
	}{{"index.json", index}, {"manifest.json", manifest}, {"oci-layout", json.RawMessage(oci.LayoutFile)}} {
		data, err := json.Marshal(doc.v)
		if err != nil {
			return err
		}
		if err := tw.file(doc.name, Blob{Size: int64(len(data)), Open: bytesOpener(data)}); err != nil {
			return err
		}
	}
	// The end of a tar archive: two zero blocks.
	_, err := w.Write(make([]byte, 1024))
	return err
}

// tarWriter writes the bytes archive/tar writes, but copies file contents
// with io.Copy so that file-to-file copies stay in the kernel.
type tarWriter struct{ w io.Writer }

// header writes the header blocks archive/tar makes for hdr.
func (t *tarWriter) header(hdr *tar.Header) error {
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
		return err
	}
	_, err := t.w.Write(buf.Bytes())
	return err
}

func (t *tarWriter) file(name string, b Blob) error {
	if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: b.Size, Mode: 0o644, ModTime: epoch}); err != nil {
		return err
	}
	r, err := b.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(t.w, io.LimitReader(r, b.Size))
	if err != nil {
		return fmt.Errorf("docker-archive: copy %s: %w", name, err)
	}
	if n != b.Size {
		return fmt.Errorf("docker-archive: blob %s has %d bytes, %d expected", b.Digest, n, b.Size)
	}
	if pad := (512 - b.Size%512) % 512; pad > 0 {
		_, err = t.w.Write(make([]byte, pad))
	}
	return err
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
