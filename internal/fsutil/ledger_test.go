package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ledgerDir makes dir with a ledger that records artifacts/{a,b/c} and a
// GC root link, all present.
func ledgerDir(t *testing.T) (string, *Ledger) {
	dir := filepath.Join(t.TempDir(), "release")
	l, err := LoadLedger(dir, filepath.Join(dir, "state", "outputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(t.TempDir(), "staging")
	write(t, filepath.Join(staging, "a"), "a")
	write(t, filepath.Join(staging, "b", "c"), "c")
	if err := l.RecordTree(staging, filepath.Join(dir, "artifacts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, filepath.Join(dir, "artifacts")); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "gcroots", "job-out")
	if err := l.Record(map[string]Kind{root: KindSymlink}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nix/store/nothing", root); err != nil {
		t.Fatal(err)
	}
	return dir, l
}

func TestLedgerClear(t *testing.T) {
	dir, l := ledgerDir(t)
	write(t, filepath.Join(dir, "local", "keep"), "kept")
	if err := l.Clear("state", "local"); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"artifacts", "gcroots"} {
		if Exists(filepath.Join(dir, gone)) {
			t.Errorf("%s survived the clear", gone)
		}
	}
	if !Exists(filepath.Join(dir, "local", "keep")) || !Exists(filepath.Join(dir, "state", "outputs.json")) {
		t.Error("clear removed what it was told to keep")
	}
	// The ledger forgot what it deleted, also once reloaded.
	l2, err := LoadLedger(dir, filepath.Join(dir, "state", "outputs.json"))
	if err != nil || len(l2.entries) != 0 {
		t.Errorf("ledger after clear: %v %v", l2.entries, err)
	}
}

func TestLedgerRefusesForeign(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "precious"), "precious")
	cases := map[string]func(dir string){
		"file added":     func(dir string) { write(t, filepath.Join(dir, "artifacts", "b", "mine"), "mine") },
		"top-level file": func(dir string) { write(t, filepath.Join(dir, "notes.txt"), "mine") },
		"dir replaced by link": func(dir string) {
			os.RemoveAll(filepath.Join(dir, "artifacts", "b"))
			os.Symlink(outside, filepath.Join(dir, "artifacts", "b"))
		},
		"file replaced by dir": func(dir string) {
			os.Remove(filepath.Join(dir, "artifacts", "a"))
			write(t, filepath.Join(dir, "artifacts", "a", "x"), "x")
		},
		"link replaced by file": func(dir string) {
			os.Remove(filepath.Join(dir, "gcroots", "job-out"))
			write(t, filepath.Join(dir, "gcroots", "job-out"), "x")
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			dir, l := ledgerDir(t)
			change(dir)
			for _, op := range []func() error{func() error { return l.CheckClear("state") }, func() error { return l.Clear("state") }} {
				err := op()
				var fe *ForeignError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("got %v, want a ForeignError naming a path in %s", err, dir)
				}
			}
			// Nothing was deleted, nothing outside was touched.
			if !Exists(filepath.Join(dir, "gcroots")) {
				t.Error("a refused clear deleted gcroots")
			}
			if data, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(data) != "precious" {
				t.Errorf("outside file: %v %q", err, data)
			}
		})
	}
}

func TestLedgerRemove(t *testing.T) {
	dir, l := ledgerDir(t)
	if err := l.Remove(filepath.Join(dir, "artifacts", "b")); err != nil {
		t.Fatal(err)
	}
	if Exists(filepath.Join(dir, "artifacts", "b")) || !Exists(filepath.Join(dir, "artifacts", "a")) {
		t.Error("Remove removed the wrong things")
	}
	if err := l.Remove(filepath.Join(dir, "artifacts", "b")); err != nil {
		t.Errorf("removing a missing entry: %v", err)
	}
	if err := l.Remove(filepath.Join(dir, "..", "x")); err == nil {
		t.Error("Remove accepted a path outside the ledger's directory")
	}
	// A temp tree is releng's whole.
	tmp := filepath.Join(dir, ".staging")
	if err := l.Record(map[string]Kind{tmp: KindTemp}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tmp, "deep", "file"), "x")
	if err := l.Clear("state"); err != nil || Exists(tmp) {
		t.Errorf("clear of a temp tree: %v", err)
	}
}

func TestLedgerFileValidated(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":    "{",
		"old version": `{"version":2,"entries":{}}`,
		"escape":      `{"version":1,"entries":{"../x":"file"}}`,
		"absolute":    `{"version":1,"entries":{"/etc":"temp"}}`,
		"bad kind":    `{"version":1,"entries":{"x":"device"}}`,
	} {
		p := filepath.Join(dir, name+".json")
		write(t, p, content)
		if _, err := LoadLedger(dir, p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadFileBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(300 << 20)
	f.Close()
	var tl *TooLargeError
	if _, err := ReadFile(big, 1<<20); !errors.As(err, &tl) || !strings.Contains(err.Error(), big) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("300 MB file: %v", err)
	}
	var nr *NotRegularError
	if _, err := ReadFile("/dev/zero", 1<<20); !errors.As(err, &nr) {
		t.Errorf("/dev/zero: %v", err)
	}
	// Beneath a root: a link out is refused naming the link.
	root := filepath.Join(dir, "root")
	write(t, filepath.Join(root, "in"), "in")
	os.Symlink("in", filepath.Join(root, "ok"))
	os.Symlink(big, filepath.Join(root, "abs"))
	os.Symlink("../big", filepath.Join(root, "rel"))
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.Symlink("../..", filepath.Join(root, "d", "up"))
	if data, err := ReadFileIn(root, "ok", 10); err != nil || string(data) != "in" {
		t.Errorf("link inside the root: %q %v", data, err)
	}
	for _, p := range []string{"abs", "rel", filepath.Join(root, "rel"), "d/up/big", "../big"} {
		var esc *EscapeError
		if _, err := ReadFileIn(root, p, 1<<20); !errors.As(err, &esc) {
			t.Errorf("%s: %v, want an EscapeError", p, err)
		}
	}
	if _, err := ReadFileIn(root, "rel", 1<<20); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "rel")+": is a symbolic link") {
		t.Errorf("the error does not name the link: %v", err)
	}
	if _, err := ReadDirIn(root, "d/up"); err == nil {
		t.Error("ReadDirIn followed a link out of the root")
	}
}
