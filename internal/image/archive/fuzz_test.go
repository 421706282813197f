package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/testenv"
)

// fuzzLayer returns a layer blob holding files, compressed with c ("" for
// a plain tar), and its digests.
func fuzzLayer(tb testing.TB, c layer.Compression, files map[string]string) ([]byte, layer.Digests) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(files[name])), Mode: 0o644, ModTime: time.Unix(1, 0)})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	if c == "" {
		sum := sha256.Sum256(tarBuf.Bytes())
		d := "sha256:" + hex.EncodeToString(sum[:])
		return tarBuf.Bytes(), layer.Digests{Digest: d, Size: int64(tarBuf.Len()), DiffID: d, DiffSize: int64(tarBuf.Len())}
	}
	var buf bytes.Buffer
	d, err := layer.Build(&buf, c, func(w io.Writer) error { _, err := w.Write(tarBuf.Bytes()); return err })
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), d
}

// fuzzArchive is an archive as Write writes it (as `releng build` does for
// an image) of layers compressed with each of cs.
func fuzzArchive(tb testing.TB, cs ...layer.Compression) []byte {
	cfg := oci.ConfigFile{Created: "1970-01-01T00:00:01Z", Architecture: "amd64", OS: "linux", RootFS: oci.RootFS{Type: "layers"}}
	var descs []oci.Descriptor
	var blobs []Blob
	for i, c := range cs {
		b, d := fuzzLayer(tb, c, map[string]string{"/nix/store/aaaa-hello/bin/hello": "#!/bin/sh\n", "etc/motd": strings.Repeat("x", i)})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d.DiffID)
		descs = append(descs, oci.Descriptor{MediaType: oci.MediaTypeLayer, Digest: d.Digest, Size: d.Size})
		blobs = append(blobs, blob(b))
	}
	cb, _ := json.Marshal(cfg)
	m := oci.Manifest{SchemaVersion: 2, MediaType: oci.MediaTypeManifest, Config: oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(cb), Size: int64(len(cb))}, Layers: descs}
	mb, _ := json.Marshal(m)
	var out bytes.Buffer
	if err := Write(&out, Image{RepoTag: "hello:1.0", Tag: "1.0", Manifest: mb, Config: blob(cb), Layers: blobs}); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// FuzzInspect feeds arbitrary bytes to Inspect, the reader of untrusted
// docker-archives. Every error is an *Error naming the file. An archive it
// accepts names its layers by clean relative entry names (never absolute,
// never with ".."), and streaming them gives, for each, bytes of the size
// and digest Inspect reported. Memory stays bounded whatever sizes the
// tar headers declare: a few buffers plus a small multiple of the input.
//
// Seeds: archives written by Write (what `releng build` writes) with gzip,
// zstd and plain layers, one compressed as a whole, one with a symbolic
// link to a layer; and the corpus in testdata/fuzz/FuzzInspect.
func FuzzInspect(f *testing.F) {
	f.Add(fuzzArchive(f, layer.Gzip, layer.Zstd))
	plain := fuzzArchive(f, "")
	f.Add(plain)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	f.Add(z.Bytes())
	// manifest.json names the layer through a symbolic link.
	b, d := fuzzLayer(f, "", map[string]string{"x": "y"})
	cfg, _ := json.Marshal(oci.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: oci.RootFS{Type: "layers", DiffIDs: []string{d.DiffID}}})
	man, _ := json.Marshal([]dockerManifest{{Config: "c.json", RepoTags: []string{"x:1"}, Layers: []string{"l/layer.tar"}}})
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range []struct {
		name, link string
		body       []byte
	}{{"blob", "", b}, {"l/layer.tar", "../blob", nil}, {"c.json", "", cfg}, {"manifest.json", "", man}} {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.body)), Mode: 0o644}
		if e.link != "" {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: e.name, Linkname: e.link}
		}
		tw.WriteHeader(h)
		tw.Write(e.body)
	}
	tw.Close()
	f.Add(tb.Bytes())

	file := filepath.Join(f.TempDir(), "hello-docker-image.tar.gz")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var a *Archive
		var err error
		testenv.CheckAllocBytes(t, "Inspect", 64*uint64(len(data))+16<<20, func() { a, err = Inspect(file) })
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.File != file {
				t.Fatalf("the error is not an *Error naming the file: %#v", err)
			}
			return
		}
		if a.Platform.OS == "" || a.Platform.Architecture == "" || len(a.Layers) == 0 || len(a.Layers) != len(a.ConfigFile.RootFS.DiffIDs) {
			t.Fatalf("accepted an image without platform or layers: %+v", a)
		}
		sizes := map[string]int64{}
		for i, l := range a.Layers {
			if l.Entry == "" || path.IsAbs(l.Entry) || path.Clean(l.Entry) != l.Entry || l.Entry == ".." || strings.HasPrefix(l.Entry, "../") {
				t.Fatalf("layer %d is entry %q, not a clean name inside the archive", i+1, l.Entry)
			}
			if l.DiffID != a.ConfigFile.RootFS.DiffIDs[i] {
				t.Fatalf("layer %d has diff_id %s, the config says %s", i+1, l.DiffID, a.ConfigFile.RootFS.DiffIDs[i])
			}
			sizes[l.Entry] = l.Size
		}
		streamed := map[string]bool{}
		err = a.Stream(func(Layer) bool { return true }, func(l Layer, r io.Reader) error {
			h := sha256.New()
			n, err := io.Copy(h, r)
			if err != nil {
				return err
			}
			if n != sizes[l.Entry] || "sha256:"+hex.EncodeToString(h.Sum(nil)) != l.Digest {
				t.Fatalf("layer %s streams %d bytes of another digest than the %d Inspect reported", l.Entry, n, l.Size)
			}
			streamed[l.Entry] = true
			return nil
		})
		if err != nil || len(streamed) != len(sizes) {
			t.Fatalf("Stream of an accepted archive: %v (%d of %d layers)", err, len(streamed), len(sizes))
		}
	})
}
