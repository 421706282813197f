package nar

import (
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	update          = flag.Bool("update", false, "rewrite golden files in testdata")
	updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the FuzzReader seed corpus from nix-store --dump")
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// docDirs picks a few /usr/share/doc directories that exist here.
func docDirs() []string {
	var dirs []string
	for _, name := range []string{"bash", "coreutils", "apt", "git", "tar", "base-files", "gzip", "dpkg"} {
		p := filepath.Join("/usr/share/doc", name)
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
		if len(dirs) == 4 {
			break
		}
	}
	return dirs
}

// TestDumpMatchesNix checks, for hand-made trees and a few real
// directories, that our NAR of both the original path and its store copy
// is byte for byte what `nix-store --dump` writes, and that NarHash and
// NarSize match `nix path-info --json`.
func TestDumpMatchesNix(t *testing.T) {
	n := requireNix(t)
	hand := handMadePaths(t)
	type source struct{ name, path string }
	var sources []source
	for _, name := range []string{"tree", "file", "exec-file", "empty", "link"} {
		sources = append(sources, source{name, hand[name]})
	}
	for _, d := range docDirs() {
		sources = append(sources, source{"doc-" + filepath.Base(d), d})
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			sp := addToStore(t, n, src.path)
			for _, p := range []string{src.path, sp} {
				want := n.run(t, "nix-store", "--dump", p)
				got := narOf(t, p)
				if !bytes.Equal(got, want) {
					c := &compareWriter{want: bytes.NewReader(want)}
					c.Write(got)
					t.Fatalf("NAR of %s differs from nix-store --dump: %s", p, c.finish())
				}
			}
			res, err := DumpPath(nil, sp, DumpOptions{Hash: true, Listing: true})
			if err != nil {
				t.Fatal(err)
			}
			info := nixPathInfo(t, n, sp)
			if res.Size != info.NarSize || res.SHA256 != info.NarHash {
				t.Errorf("%s: NarSize %d NarHash %x, nix path-info says %d %x", sp, res.Size, res.SHA256, info.NarSize, info.NarHash)
			}
			// The listing built while dumping equals the one read back
			// from Nix's own NAR.
			fromNix, err := ReadListing(bytes.NewReader(n.run(t, "nix-store", "--dump", sp)))
			if err != nil {
				t.Fatal(err)
			}
			assertSameListing(t, res.Listing, fromNix)
		})
	}
}

func assertSameListing(t *testing.T, got, want *Listing) {
	t.Helper()
	g, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("listings differ:\n got: %.400s\nwant: %.400s", g, w)
	}
}

// TestDumpGoToolchain compares our NAR of the Go toolchain (~270 MB, 16k
// files) with `nix-store --dump`, streaming both, and measures throughput.
func TestDumpGoToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the Go toolchain NAR comparison in -short mode")
	}
	n := requireNix(t)
	goroot := "/usr/local/go"
	if _, err := os.Stat(goroot); err != nil {
		goroot = strings.TrimSpace(runOut(t, "go", "env", "GOROOT"))
	}
	start := time.Now()
	sp := addToStore(t, n, goroot)
	t.Logf("nix-store --add %s: %v", goroot, time.Since(start).Round(time.Millisecond))

	cmd := n.command("nix-store", "--dump", sp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Nix's NAR goes to the comparison and, through a pipe, to ReadListing.
	pr, pw := io.Pipe()
	listingDone := make(chan struct{})
	var fromNix *Listing
	var listErr error
	go func() {
		defer close(listingDone)
		fromNix, listErr = ReadListing(pr)
		io.Copy(io.Discard, pr)
	}()
	cmp := &compareWriter{want: io.TeeReader(stdout, pw)}
	start = time.Now()
	res, err := DumpPath(cmp, sp, DumpOptions{Hash: true, Listing: true})
	if err != nil {
		t.Fatal(err)
	}
	diff := cmp.finish()
	pw.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	<-listingDone
	if diff != "" {
		t.Fatalf("NAR of %s differs from nix-store --dump: %s", sp, diff)
	}
	t.Logf("compared %d bytes with nix-store --dump in %v", res.Size, time.Since(start).Round(time.Millisecond))
	if listErr != nil {
		t.Fatal(listErr)
	}
	assertSameListing(t, res.Listing, fromNix)
	info := nixPathInfo(t, n, sp)
	if res.Size != info.NarSize || res.SHA256 != info.NarHash {
		t.Errorf("NarSize %d NarHash %x, nix path-info says %d %x", res.Size, res.SHA256, info.NarSize, info.NarHash)
	}

	// Throughput of what a push does: NAR, hash and listing in one pass.
	start = time.Now()
	if _, err := DumpPath(nil, sp, DumpOptions{Hash: true, Listing: true}); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("DumpPath(hash+listing) of %s: %d bytes in %v, %.0f MB/s", sp, res.Size, el.Round(time.Millisecond), float64(res.Size)/el.Seconds()/1e6)
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

// TestDumpSingleFileOffsets checks the NAR layout by hand for the
// smallest case: the contents of a root file start at byte 96.
func TestDumpSingleFileOffsets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	res, err := DumpPath(&b, p, DumpOptions{Listing: true, Hash: true})
	if err != nil {
		t.Fatal(err)
	}
	want := toks("nix-archive-1", "(", "type", "regular", "contents", "hello", ")")
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("NAR:\n got %q\nwant %q", b.Bytes(), want)
	}
	if res.Size != uint64(len(want)) || res.SHA256 != sha256Of(want) {
		t.Errorf("size/hash %d %x, want %d %x", res.Size, res.SHA256, len(want), sha256Of(want))
	}
	ls, err := res.Listing.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(ls), `{"root":{"narOffset":96,"size":5,"type":"regular"},"version":1}`; got != want {
		t.Errorf("listing %s, want %s", got, want)
	}
}

// TestDumpRefuses checks what §9.2 says must not be published; the
// errors name the offending path.
func TestDumpRefuses(t *testing.T) {
	deep := func(levels int) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string {
			p := dir
			for i := 1; i <= levels; i++ {
				p = filepath.Join(p, "d")
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	tests := []struct {
		name    string
		make    func(t *testing.T, dir string) string // returns the path the error must name
		wantErr string
	}{
		{"fifo", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			mkfifo(t, p)
			return p
		}, "unsupported file type (a named pipe)"},
		{"socket", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "sock")
			mksocket(t, p)
			return p
		}, "unsupported file type (a socket)"},
		{"device", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "null")
			mkdevice(t, p)
			return p
		}, "unsupported file type (a character device)"},
		{"case hack", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x~nix~case~hack~1")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, `contains "~nix~case~hack~"`},
		{"64 levels", deep(64), "64 levels deep (limit 63)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			bad := tc.make(t, root)
			err := Dump(io.Discard, root)
			if err == nil {
				t.Fatalf("Dump succeeded, want an error about %s", bad)
			}
			if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %s and say %q", err, bad, tc.wantErr)
			}
		})
	}
	t.Run("63 levels is fine", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		deep(63)(t, root)
		if err := Dump(io.Discard, root); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fifo as root", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "fifo")
		mkfifo(t, p)
		if err := Dump(io.Discard, p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v does not name %s", err, p)
		}
	})
	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "missing")
		if err := Dump(io.Discard, p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v does not name %s", err, p)
		}
	})
}

// TestListingGolden checks the listing of the hand-made tree against a
// golden file and the format rules of §9: compact JSON, keys sorted at
// every level, `executable` only when true, and every narOffset pointing
// at the file's contents in the NAR.
func TestListingGolden(t *testing.T) {
	tree := handMadePaths(t)["tree"]
	var nar bytes.Buffer
	res, err := DumpPath(&nar, tree, DumpOptions{Listing: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Listing.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tree.ls")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("listing differs from %s (run with -update to rewrite):\n got: %s\nwant: %s", golden, got, want)
	}
	checkListingFormat(t, got)

	// Every regular file's narOffset/size slice of the NAR is its contents.
	var walk func(n *Node, path string)
	files := 0
	walk = func(n *Node, path string) {
		switch n.Type {
		case TypeRegular:
			files++
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if end := n.NarOffset + n.Size; end > uint64(nar.Len()) || !bytes.Equal(nar.Bytes()[n.NarOffset:end], data) {
				t.Errorf("%s: narOffset %d size %d do not point at its contents", path, n.NarOffset, n.Size)
			}
			fi, _ := os.Lstat(path)
			if n.Executable != (fi.Mode()&0o100 != 0) {
				t.Errorf("%s: executable %v, mode %v", path, n.Executable, fi.Mode())
			}
		case TypeDirectory:
			names := make([]string, len(n.Entries))
			for i, e := range n.Entries {
				names[i] = e.Name
				walk(e.Node, filepath.Join(path, e.Name))
			}
			if !sort.StringsAreSorted(names) {
				t.Errorf("%s: entries not sorted: %q", path, names)
			}
		}
	}
	walk(res.Listing.Root, tree)
	if files == 0 {
		t.Fatal("no files checked")
	}
}

// TestListingEncoding checks string escaping against what
// nlohmann::json::dump() writes, and that invalid UTF-8 is refused (Nix
// throws on it) with the entry named.
func TestListingEncoding(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\s`, `"q\"b\\s"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"a/b<>&", `"a/b<>&"`},
		{"é名\u2028", "\"é名\u2028\""},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := encodeString(&b, tc.in); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("encodeString(%q) = %s, want %s", tc.in, b.String(), tc.want)
		}
	}
	l := &Listing{Root: &Node{Type: TypeDirectory, Entries: []Entry{
		{Name: "ok", Node: &Node{Type: TypeDirectory, Entries: []Entry{{Name: "bad\xff", Node: &Node{Type: TypeRegular, NarOffset: 8}}}}},
	}}}
	_, err := l.Marshal()
	if err == nil || !strings.Contains(err.Error(), `/ok/bad\xff`) {
		t.Errorf("Marshal error %v does not name the entry", err)
	}
	l = &Listing{Root: &Node{Type: TypeSymlink, Target: "\xc0\xaf"}}
	if _, err := l.Marshal(); err == nil {
		t.Error("overlong UTF-8 in a target was accepted")
	}
	l = &Listing{Root: &Node{Type: TypeRegular, Executable: true, Size: 0, NarOffset: 112}}
	got, _ := l.Marshal()
	if want := `{"root":{"executable":true,"narOffset":112,"size":0,"type":"regular"},"version":1}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Dump writes the NAR of path to w: [DumpPath] without the extras.
func Dump(w io.Writer, path string) error {
	_, err := DumpPath(w, path, DumpOptions{})
	return err
}
