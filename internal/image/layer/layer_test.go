package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// fakeStore makes a directory shaped like a store with a few paths whose
// modes are set explicitly (no umask dependence).
func fakeStore(t *testing.T) (dir string, paths []string) {
	t.Helper()
	dir = t.TempDir()
	mk := func(rel string, mode os.FileMode, data string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	app := "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-app-1.0"
	lib := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-lib-2.0"
	single := "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm-script"
	mk(app+"/bin/app", 0o555, "#!/bin/sh\necho app\n")
	mk(app+"/share/doc/a-b/README", 0o444, "readme")
	mk(app+"/share/doc/a/z", 0o444, "depth first: a/ before a-b/")
	mk(app+"/share/"+strings.Repeat("long", 40), 0o444, "a name longer than USTAR allows")
	mk(lib+"/lib/libx.so.2", 0o444, strings.Repeat("x", 5000))
	if err := os.Symlink("libx.so.2", filepath.Join(dir, lib, "lib/libx.so")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, lib, "lib/libx.so.2"), filepath.Join(dir, lib, "lib/hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, lib, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	mk(single, 0o555, "#!/bin/sh\n")
	for _, d := range []string{app, app + "/bin", app + "/share", app + "/share/doc", app + "/share/doc/a", app + "/share/doc/a-b", lib, lib + "/lib", lib + "/empty"} {
		if err := os.Chmod(filepath.Join(dir, d), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir, []string{"/nix/store/" + app, "/nix/store/" + single, lib}
}

// listing describes a tar's entries, one per line.
func listing(t *testing.T, data []byte) string {
	t.Helper()
	var b strings.Builder
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		sum := sha256.Sum256(body)
		fmt.Fprintf(&b, "%c %04o %d/%d %q/%q %s %d %s", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime.UTC().Format("2006-01-02T15:04:05Z"), h.Size, h.Name)
		if h.Linkname != "" {
			fmt.Fprintf(&b, " -> %s", h.Linkname)
		}
		if h.Size > 0 {
			fmt.Fprintf(&b, " sha256:%s", hex.EncodeToString(sum[:6]))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestStorePathsTar(t *testing.T) {
	dir, paths := fakeStore(t)
	var buf bytes.Buffer
	if err := WriteStorePaths(&buf, dir, paths); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	golden(t, "store_paths.golden", listing(t, buf.Bytes())+fmt.Sprintf("tar sha256:%x\n", sum))
	// The same paths in another order, from a copy elsewhere: same bytes.
	var again bytes.Buffer
	if err := WriteStorePaths(&again, dir, []string{paths[2], paths[0], paths[1]}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("path order changed the tar")
	}
}

func TestStorePathsErrors(t *testing.T) {
	dir := t.TempDir()
	p := "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-fifo"
	if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, p, "pipe"), 0o644); err != nil {
		t.Skip("no fifos here:", err)
	}
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"fifo", []string{p}, "pipe"},
		{"missing", []string{"cccccccccccccccccccccccccccccccc-gone"}, "cccccccccccccccccccccccccccccccc-gone"},
		{"twice", []string{p, "/nix/store/" + p}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteStorePaths(io.Discard, dir, tc.paths)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestTopLayer(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-bash/bin/sh", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := WriteTop(&buf, Top{
		RootTree: root,
		TmpDirs:  []string{"/tmp", "/var/tmp"},
		Files:    []File{{Name: "/nix/var/nix/db/schema", Mode: 0o644, Data: []byte("10")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "top.golden", listing(t, buf.Bytes()))
}

func TestTopLayerErrors(t *testing.T) {
	root := t.TempDir()
	if err := os.Symlink("/elsewhere", filepath.Join(root, "tmp")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name string
		top  Top
		want string
	}{
		{"tmp is a symlink in the root", Top{RootTree: root, TmpDirs: []string{"/tmp"}}, "/tmp is not a directory"},
		{"relative tmp dir", Top{TmpDirs: []string{"tmp"}}, "absolute"},
		{"root is a file", Top{RootTree: file}, "not a directory"},
		{"root missing", Top{RootTree: filepath.Join(root, "nope")}, "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteTop(io.Discard, tc.top)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// testData is compressible but not trivially so.
func testData(n int) []byte {
	rng := rand.New(rand.NewSource(int64(n)))
	words := []string{"nix", "store", "layer", "image", "release", "\n", "lix", "0123456789"}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.Intn(20) == 0 {
			b.WriteByte(byte(rng.Intn(256)))
		}
		b.WriteString(words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

func compress(t *testing.T, c Compression, data []byte, procs int) []byte {
	t.Helper()
	old := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(old)
	var out bytes.Buffer
	d, err := Compress(&out, c, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out.Bytes())
	if d.Digest != "sha256:"+hex.EncodeToString(sum[:]) || d.Size != int64(out.Len()) {
		t.Errorf("digest %s/%d does not match the output", d.Digest, d.Size)
	}
	sum = sha256.Sum256(data)
	if d.DiffID != "sha256:"+hex.EncodeToString(sum[:]) || d.DiffSize != int64(len(data)) {
		t.Errorf("diff_id %s/%d does not match the input", d.DiffID, d.DiffSize)
	}
	return out.Bytes()
}

func TestCompressionDeterministic(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		bs := map[Compression]int{Gzip: gzipBlock, Zstd: zstdFrame}[c]
		for _, n := range []int{0, 1, bs - 1, bs, bs + 1, 2 * bs, 3*bs + 12345} {
			t.Run(fmt.Sprintf("%s/%d", c, n), func(t *testing.T) {
				data := testData(n)
				one := compress(t, c, data, 1)
				many := compress(t, c, data, 8)
				if !bytes.Equal(one, many) {
					t.Fatalf("GOMAXPROCS changed the output: %d vs %d bytes", len(one), len(many))
				}
				var got []byte
				var err error
				switch c {
				case Gzip:
					if !bytes.Equal(one[:10], []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}) {
						t.Errorf("gzip header % x: want no name, no mtime", one[:10])
					}
					zr, zerr := gzip.NewReader(bytes.NewReader(one))
					if zerr != nil {
						t.Fatal(zerr)
					}
					zr.Multistream(false)
					got, err = io.ReadAll(zr)
				case Zstd:
					// Independent frames, one per zstdFrame of input (one
					// empty frame for no input).
					if frames, want := countZstdFrames(t, one), max(1, (n+zstdFrame-1)/zstdFrame); frames != want {
						t.Errorf("%d frames, want %d", frames, want)
					}
					zr, zerr := zstd.NewReader(bytes.NewReader(one))
					if zerr != nil {
						t.Fatal(zerr)
					}
					got, err = io.ReadAll(zr)
					zr.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatal("round trip changed the data")
				}
			})
		}
	}
}

// TestCompressionReusedBlocks: a writer given the blocks a previous one
// used (holding its input, dictionary and output) writes what a writer
// with new blocks writes.
func TestCompressionReusedBlocks(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			bs := map[Compression]int{Gzip: gzipBlock, Zstd: zstdFrame}[c]
			small := testData(bs/2 + 777)
			blocks.Clear()
			fresh := compress(t, c, small, 2)
			// Fill the pool with blocks full of other data, several at once.
			other := bytes.Repeat([]byte("another layer, other bytes "), 3*bs/27+1000)
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					if _, err := Compress(io.Discard, c, bytes.NewReader(other)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if reused := compress(t, c, small, 2); !bytes.Equal(fresh, reused) {
				t.Fatalf("reused blocks changed the output: %d vs %d bytes", len(fresh), len(reused))
			}
		})
	}
}

// countZstdFrames walks the frames of a zstd stream and counts them.
func countZstdFrames(t *testing.T, b []byte) int {
	t.Helper()
	var h zstd.Header
	n := 0
	for len(b) > 0 {
		if err := h.Decode(b); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		b = b[frameSize(t, b, h.HeaderSize, h.HasCheckSum):]
		n++
	}
	return n
}

// frameSize is the size of the frame at the start of b: its header, its
// blocks (3-byte headers: last flag, type, size) and its checksum.
func frameSize(t *testing.T, b []byte, header int, checksum bool) int {
	t.Helper()
	off := header
	for {
		if off+3 > len(b) {
			t.Fatal("truncated block header")
		}
		bh := uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16
		last, typ, size := bh&1 == 1, (bh>>1)&3, int(bh>>3)
		off += 3
		if typ == 1 { // RLE: one byte
			size = 1
		}
		off += size
		if last {
			break
		}
	}
	if checksum {
		off += 4
	}
	return off
}

func TestCompressionValidate(t *testing.T) {
	if err := Compression("xz").Validate(); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewCompressor(io.Discard, "xz"); err == nil {
		t.Error("xz accepted")
	}
	if Zstd.MediaType() != "application/vnd.oci.image.layer.v1.tar+zstd" || Gzip.MediaType() != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Error("media types")
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, fmt.Errorf("disk full")
	}
	f.after--
	return len(p), nil
}

func TestGzipWriteError(t *testing.T) {
	g := NewGzip(&failWriter{after: 2}, GzipLevel)
	data := testData(3 * gzipBlock)
	g.Write(data)
	if err := g.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the writer's error", err)
	}
}
