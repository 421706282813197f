package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/image/layer"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/testenv"
)

type testLayer struct {
	blob []byte
	d    layer.Digests
}

// makeLayer builds a gzip layer holding files.
func makeLayer(t *testing.T, files map[string]string) testLayer {
	t.Helper()
	var buf bytes.Buffer
	d, err := layer.Build(&buf, layer.Gzip, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, name := range sortedKeys(files) {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(files[name])), Mode: 0o644, ModTime: time.Unix(1, 0)})
			tw.Write([]byte(files[name]))
		}
		return tw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return testLayer{buf.Bytes(), d}
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func blob(b []byte) Blob {
	return Blob{Digest: oci.Digest(b), Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// testImage writes an archive of a two-layer image and returns its path.
func testImage(t *testing.T) (string, []testLayer) {
	t.Helper()
	ls := []testLayer{
		makeLayer(t, map[string]string{"/nix/store/aaaa-hello/bin/hello": "#!/bin/sh\necho hello\n"}),
		makeLayer(t, map[string]string{"/etc/motd": "releng"}),
	}
	cfg := oci.ConfigFile{Created: "1970-01-01T00:00:01Z", Architecture: "amd64", OS: "linux", RootFS: oci.RootFS{Type: "layers"}}
	var descs []oci.Descriptor
	var blobs []Blob
	for _, l := range ls {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.d.DiffID)
		descs = append(descs, oci.Descriptor{MediaType: layer.Gzip.MediaType(), Digest: l.d.Digest, Size: l.d.Size})
		blobs = append(blobs, blob(l.blob))
	}
	cb, _ := json.Marshal(cfg)
	m := oci.Manifest{SchemaVersion: 2, MediaType: oci.MediaTypeManifest, Config: oci.Descriptor{MediaType: oci.MediaTypeConfig, Digest: oci.Digest(cb), Size: int64(len(cb))}, Layers: descs}
	mb, _ := json.Marshal(m)
	path := filepath.Join(t.TempDir(), "hello-1.0-docker-image-x86_64-linux.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, Image{RepoTag: "hello:1.0", Tag: "1.0", Manifest: mb, Config: blob(cb), Layers: blobs}); err != nil {
		t.Fatal(err)
	}
	return path, ls
}

func TestWriteInspect(t *testing.T) {
	path, ls := testImage(t)
	a, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Layers) != 2 || a.RepoTags[0] != "hello:1.0" || a.Platform.Architecture != "amd64" {
		t.Fatalf("archive = %+v", a)
	}
	for i, l := range a.Layers {
		if l.Digest != ls[i].d.Digest || l.DiffID != ls[i].d.DiffID || l.Compression != "gzip" || l.Size != ls[i].d.Size || l.DiffSize != ls[i].d.DiffSize {
			t.Errorf("layer %d = %+v, want %+v", i, l, ls[i].d)
		}
	}
	// Stream gives the stored bytes of the layers asked for.
	var got [][]byte
	err = a.Stream(func(l Layer) bool { return true }, func(l Layer, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, b)
		return err
	})
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], ls[0].blob) {
		t.Fatalf("Stream: %v (%d layers)", err, len(got))
	}
	// Same input, same bytes.
	again, _ := testImage(t)
	b1, _ := os.ReadFile(path)
	b2, _ := os.ReadFile(again)
	if !bytes.Equal(b1, b2) {
		t.Error("the same image gave two different archives")
	}
}

// skopeo, an independent reader, copies our archive.
func TestSkopeoReadsArchive(t *testing.T) {
	skopeo := testenv.LookPath(t, "skopeo", "apt-get install -y skopeo")
	path, _ := testImage(t)
	dest := filepath.Join(t.TempDir(), "oci")
	out, err := exec.Command(skopeo, "copy", "docker-archive:"+path, "oci:"+dest+":1.0").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy docker-archive: %v\n%s", err, out)
	}
	out, err = exec.Command(skopeo, "inspect", "--config", "oci:"+dest+":1.0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"architecture": "amd64"`) {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	// It is an OCI archive too.
	out, err = exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+path+":1.0").CombinedOutput()
	if err == nil && !strings.Contains(string(out), oci.MediaTypeManifest) {
		t.Errorf("oci-archive view: %s", out)
	}
}

// rawHeader makes a 512-byte tar header by hand, for what archive/tar
// refuses to write.
func rawHeader(name string, typ byte, size, realSize int64) []byte {
	h := make([]byte, 512)
	copy(h, name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "00000000001\x00")
	h[156] = typ
	copy(h[257:], "ustar  \x00")
	if realSize > 0 {
		copy(h[483:], fmt.Sprintf("%011o\x00", realSize))
	}
	copy(h[148:], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

type tarEntry struct {
	hdr  *tar.Header
	body []byte
	raw  []byte // instead of hdr/body
}

func file(name, body string) tarEntry {
	return tarEntry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}, body: []byte(body)}
}

func writeArchive(t *testing.T, entries []tarEntry, gz bool) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.raw != nil {
			tw.Flush()
			buf.Write(e.raw)
			continue
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatalf("%s: %v", e.hdr.Name, err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	data := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	p := filepath.Join(t.TempDir(), "bad.tar.gz")
	os.WriteFile(p, data, 0o644)
	return p
}

func TestInspectHostile(t *testing.T) {
	good := makeLayer(t, map[string]string{"/x": "x"})
	cfg := func(diffIDs ...string) string {
		b, _ := json.Marshal(oci.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: oci.RootFS{Type: "layers", DiffIDs: diffIDs}})
		return string(b)
	}
	manifest := func(config string, layers ...string) string {
		b, _ := json.Marshal([]dockerManifest{{Config: config, RepoTags: []string{"x:1"}, Layers: layers}})
		return string(b)
	}
	ok := []tarEntry{file("layer.tar.gz", string(good.blob)), file("config.json", cfg(good.d.DiffID)), file("manifest.json", manifest("config.json", "layer.tar.gz"))}
	dotdot := makeLayer(t, map[string]string{"../../etc/cron.d/evil": "x"})
	bigManifest := "[" + strings.Repeat(" ", MaxDocument) + "]"

	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dot-dot entry", append([]tarEntry{file("../evil", "x")}, ok...), `".."`},
		{"dot-dot in the middle", append([]tarEntry{file("blobs/../../evil", "x")}, ok...), `".."`},
		{"absolute entry", append([]tarEntry{file("/etc/passwd", "x")}, ok...), "absolute name"},
		{"absolute symlink escape", []tarEntry{
			{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "layer.tar.gz", Linkname: "/etc/shadow"}},
			file("config.json", cfg(good.d.DiffID)), file("manifest.json", manifest("config.json", "layer.tar.gz"))}, "absolute symbolic link"},
		{"relative symlink escape", []tarEntry{
			{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "a/layer.tar", Linkname: "../../../etc/shadow"}}}, "outside the archive"},
		{"hard link to nothing", []tarEntry{{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "nothing"}}}, "not an earlier file"},
		{"hard link outside", []tarEntry{{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "../x"}}}, `".."`},
		{"manifest names missing layers", []tarEntry{file("config.json", cfg(good.d.DiffID, good.d.DiffID)), file("manifest.json", manifest("config.json", "layer.tar.gz", "gone.tar"))}, "named in manifest.json but not in the archive"},
		{"missing config", []tarEntry{file("layer.tar.gz", string(good.blob)), file("manifest.json", manifest("nope.json", "layer.tar.gz"))}, "nope.json"},
		{"no manifest", []tarEntry{file("layer.tar.gz", string(good.blob))}, "no manifest.json"},
		{"GNU sparse entry claiming 10 GB", append([]tarEntry{{raw: append(rawHeader("big", tar.TypeGNUSparse, 0, 10<<30), make([]byte, 0)...)}}, ok...), "sparse"},
		{"PAX sparse entry claiming 10 GB", append([]tarEntry{{raw: paxSparse(10 << 30)}}, ok...), "sparse"},
		{"entry claiming 10 GB, truncated", []tarEntry{{raw: rawHeader("huge.tar", tar.TypeReg, 10<<30, 0)}}, "truncated"},
		{"huge manifest.json", append(ok[:2:2], file("manifest.json", bigManifest)), "larger than"},
		{"two images", append(ok[:2:2], file("manifest.json", "["+manifest("config.json", "layer.tar.gz")[1:len(manifest("config.json", "layer.tar.gz"))-1]+","+manifest("config.json", "layer.tar.gz")[1:])), "holds 2 images"},
		{"device", append([]tarEntry{{hdr: &tar.Header{Typeflag: tar.TypeChar, Name: "dev", Devmajor: 1, Devminor: 3}}}, ok...), "character device"},
		{"duplicate entry", append(ok, file("manifest.json", "[]")), "appears twice"},
		{"diff_id mismatch", []tarEntry{file("layer.tar.gz", string(good.blob)), file("config.json", cfg("sha256:"+strings.Repeat("0", 64))), file("manifest.json", manifest("config.json", "layer.tar.gz"))}, "the archive is corrupt"},
		{"layer with dot-dot inside", []tarEntry{file("layer.tar.gz", string(dotdot.blob)), file("config.json", cfg(dotdot.d.DiffID)), file("manifest.json", manifest("config.json", "layer.tar.gz"))}, `contains ".."`},
		{"not JSON manifest", append(ok[:2:2], file("manifest.json", "{nope")), "not a docker-archive manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, gz := range []bool{false, true} {
				p := writeArchive(t, tc.entries, gz)
				start := time.Now()
				_, err := Inspect(p)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("gzip=%v: err = %v, want it to mention %q", gz, err, tc.want)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("the error does not name the file: %v", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %s: a hostile archive must be refused quickly", d)
				}
			}
		})
	}
	if _, err := Inspect(writeArchive(t, ok, true)); err != nil {
		t.Fatalf("the good archive of the table: %v", err)
	}
	// Not an archive at all.
	junk := filepath.Join(t.TempDir(), "junk.tar.gz")
	os.WriteFile(junk, []byte("\x1f\x8bnot really gzip"), 0o644)
	if _, err := Inspect(junk); err == nil {
		t.Error("junk accepted")
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "missing.tar.gz")); err == nil || !strings.Contains(err.Error(), "missing.tar.gz") {
		t.Errorf("missing file: %v", err)
	}
}

// paxSparse is a PAX header declaring a GNU sparse 1.0 file of realSize
// bytes, followed by its (tiny) entry.
func paxSparse(realSize int64) []byte {
	rec := func(k, v string) string {
		s := " " + k + "=" + v + "\n"
		n := len(s)
		for len(fmt.Sprint(n+len(fmt.Sprint(n))))+len(s) != n+len(fmt.Sprint(n)) {
			n++
		}
		l := len(s) + len(fmt.Sprint(len(s)))
		if len(fmt.Sprint(l)) != len(fmt.Sprint(len(s))) {
			l++
		}
		return fmt.Sprint(l) + s
	}
	body := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") + rec("GNU.sparse.name", "big") + rec("GNU.sparse.realsize", fmt.Sprint(realSize))
	out := rawHeader("PaxHeaders/big", tar.TypeXHeader, int64(len(body)), 0)
	pad := make([]byte, (512-len(body)%512)%512)
	out = append(out, body...)
	out = append(out, pad...)
	// The entry: a sparse map with no data blocks ("0\n" padded to 512).
	sparseMap := append([]byte("0\n"), make([]byte, 510)...)
	out = append(out, rawHeader("big", tar.TypeReg, 512, 0)...)
	return append(out, sparseMap...)
}

// The archive is byte for byte what archive/tar writes for the same
// entries (Write only copies file contents its own way).
func TestWriteIsPlainTar(t *testing.T) {
	path, _ := testImage(t)
	got, _ := os.ReadFile(path)
	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	tr := tar.NewReader(bytes.NewReader(got))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		tw.WriteHeader(&tar.Header{Typeflag: h.Typeflag, Name: h.Name, Size: h.Size, Mode: h.Mode, ModTime: epoch})
		tw.Write(body)
	}
	tw.Close()
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("archive differs from archive/tar's output (%d vs %d bytes)", len(got), want.Len())
	}
}
