package nar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chunkSink is a Sink that lends buffers of the given sizes in turn and
// keeps what is committed.
type chunkSink struct {
	sizes     []int
	next      int
	buf       []byte
	got       bytes.Buffer
	commitErr error
	flushed   int
}

func (s *chunkSink) Write(p []byte) (int, error) { return 0, errors.New("Write called on a Sink") }

func (s *chunkSink) Buffer() ([]byte, error) {
	n := s.sizes[s.next%len(s.sizes)]
	s.next++
	s.buf = make([]byte, n)
	for i := range s.buf {
		s.buf[i] = 0xAA // not zero: padding must be written, not assumed
	}
	return s.buf, nil
}

func (s *chunkSink) Commit(n int) error {
	if n < 0 || n > len(s.buf) {
		return fmt.Errorf("commit of %d bytes of a %d-byte buffer", n, len(s.buf))
	}
	if s.commitErr != nil {
		return s.commitErr
	}
	s.got.Write(s.buf[:n])
	return nil
}

func (s *chunkSink) Flush() error {
	s.flushed++
	return nil
}

// TestDumpIntoSink: a NAR written into a Sink's buffers, whatever their
// sizes, is the NAR written to a plain writer (which the tests against
// nix-store --dump check), with the same hash, size and listing.
func TestDumpIntoSink(t *testing.T) {
	tree := handMadePaths(t)["tree"]
	big := filepath.Join(t.TempDir(), "big")
	data := bytes.Repeat([]byte("0123456789abcdef"), 70000) // 1.1 MB: several buffers
	if err := os.WriteFile(big, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{tree, big} {
		var plain bytes.Buffer
		want, err := DumpPath(&plain, path, DumpOptions{Hash: true, Listing: true})
		if err != nil {
			t.Fatal(err)
		}
		wantLs, _ := want.Listing.Marshal()
		for _, sizes := range [][]int{{1}, {7}, {3, 5, 64}, {4096}, {1 << 20}} {
			t.Run(fmt.Sprintf("%s/%v", filepath.Base(path), sizes), func(t *testing.T) {
				s := &chunkSink{sizes: sizes}
				got, err := DumpPath(s, path, DumpOptions{Hash: true, Listing: true})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(s.got.Bytes(), plain.Bytes()) {
					t.Fatalf("NAR through the Sink differs: %d bytes, want %d", s.got.Len(), plain.Len())
				}
				if got.Size != want.Size || got.SHA256 != want.SHA256 || got.SHA256 != sha256Of(plain.Bytes()) {
					t.Errorf("size/hash %d %x, want %d %x", got.Size, got.SHA256, want.Size, want.SHA256)
				}
				if ls, _ := got.Listing.Marshal(); !bytes.Equal(ls, wantLs) {
					t.Errorf("listing %s, want %s", ls, wantLs)
				}
				if s.flushed != 1 {
					t.Errorf("Flush called %d times, want once", s.flushed)
				}
			})
		}
	}
	t.Run("commit error", func(t *testing.T) {
		s := &chunkSink{sizes: []int{4096}, commitErr: errors.New("disk on fire")}
		_, err := DumpPath(s, big, DumpOptions{Hash: true})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), big) {
			t.Errorf("error %v does not pass on the Sink's and name %s", err, big)
		}
	})
}

// TestOpenFileReadDir: what the layer writer reads through nar — sizes,
// modes, contents, entry types — and that OpenFile refuses anything but a
// regular file without following a link.
func TestOpenFileReadDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "exe"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"exe": 0o755, "plain": 0o644} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("plain", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	entries, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, e := range entries {
		types[e.Name] = e.Type.String()
	}
	want := map[string]string{"exe": "----------", "plain": "----------", "sub": "d---------", "link": "L---------"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("ReadDir types %v, want %v", types, want)
	}
	for _, tc := range []struct {
		name, data string
		mode       os.FileMode
	}{{"exe", "#!/bin/sh\n", 0o755}, {"plain", "hello", 0o644}} {
		f, err := OpenFile(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != tc.data || f.Size != int64(len(tc.data)) || f.Mode != tc.mode {
			t.Errorf("%s: %q, size %d, mode %v, %v; want %q, %v", tc.name, b, f.Size, f.Mode, err, tc.data, tc.mode)
		}
	}
	for _, name := range []string{"sub", "link", "missing"} {
		if f, err := OpenFile(filepath.Join(dir, name)); err == nil {
			f.Close()
			t.Errorf("OpenFile(%s) succeeded", name)
		} else if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
			t.Errorf("OpenFile(%s): %v does not name it", name, err)
		}
	}
}
