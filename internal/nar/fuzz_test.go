package nar

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader. Whatever it accepts must
// re-encode to exactly the bytes it read (only the canonical form is
// accepted), restore into a directory, and dump back to the same NAR;
// whatever it refuses must be refused with a *FormatError, and Restore
// must leave nothing behind.
//
// The seed corpus in testdata/fuzz/FuzzReader holds real NARs written by
// nix-store --dump (regenerate with -update-fuzz-seeds).
func FuzzReader(f *testing.F) {
	f.Add(tNAR(tFile("hello")))
	f.Add(tNAR(tExec("")))
	f.Add(tNAR(tLink("../x")))
	f.Add(tNAR(tDir()))
	f.Add(tNAR(tDir(tEntry("a", tDir(tEntry("b", tFile("x")))), tEntry("c", tLink("a/b")))))
	f.Add(deepNAR(62))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, hs, err := readAll(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			dst := fuzzTarget(t)
			if Restore(bytes.NewReader(data), dst) == nil {
				t.Fatalf("Restore accepted what the Reader refused: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
				t.Fatalf("Restore left %q behind", entries[0].Name())
			}
			return
		}
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("accepted a non-canonical NAR: re-encoding differs")
		}
		seen := map[string]bool{}
		for _, h := range hs {
			if seen[h.Path] {
				t.Fatalf("path %q returned twice", h.Path)
			}
			seen[h.Path] = true
		}
		dst := fuzzTarget(t)
		defer os.RemoveAll(dst)
		if err := Restore(bytes.NewReader(data), dst); err != nil {
			// Only the OS may refuse what the Reader accepted (e.g. a
			// path longer than PATH_MAX); nothing may be left behind.
			if _, serr := os.Lstat(dst); serr == nil {
				t.Fatalf("Restore failed (%v) and left %s behind", err, dst)
			}
			return
		}
		var again bytes.Buffer
		if err := Dump(&again, dst); err != nil {
			t.Fatalf("dumping the restored tree: %v", err)
		}
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("restored tree dumps to a different NAR")
		}
	})
}

var fuzzDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "releng-nar-fuzz-")
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
})

// fuzzTarget returns a path that does not exist in an empty directory;
// t.TempDir per input would make fuzzing ten times slower.
func fuzzTarget(t *testing.T) string {
	dir, err := fuzzDir()
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dir, "w")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "out")
}

// TestWriteFuzzSeeds rewrites the seed corpus from nix-store --dump when
// run with -update-fuzz-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("run with -update-fuzz-seeds to rewrite testdata/fuzz/FuzzReader")
	}
	n := requireNix(t)
	dir := t.TempDir()
	small := filepath.Join(dir, "small-tree")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	var entries []fsEntry
	for _, e := range handTree {
		if e.randLen == 0 && len(e.path) < 64 && len(e.data) < 64 {
			entries = append(entries, e)
		}
	}
	if err := makeTree(small, entries); err != nil {
		t.Fatal(err)
	}
	hand := handMadePaths(t)
	seeds := map[string]string{
		"nix-small-tree": small,
		"nix-file":       hand["file"],
		"nix-exec-file":  hand["exec-file"],
		"nix-empty":      hand["empty"],
		"nix-link":       hand["link"],
	}
	// Two small real directories from /usr/share/doc.
	docs, _ := filepath.Glob("/usr/share/doc/*")
	picked := 0
	for _, d := range docs {
		if fi, err := os.Lstat(d); picked == 2 || err != nil || !fi.IsDir() {
			continue
		}
		if res, err := DumpPath(nil, d, DumpOptions{}); err == nil && res.Size < 16<<10 {
			seeds["nix-doc-"+filepath.Base(d)] = d
			picked++
		}
	}
	out := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, p := range seeds {
		data := n.run(t, "nix-store", "--dump", p)
		if len(data) > 64<<10 {
			t.Logf("skipping %s: %d bytes is too big for a seed", name, len(data))
			continue
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
