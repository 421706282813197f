package nixdb

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// key is what a path information is compared by: all of it (path, NAR
// hash and size, references, deriver, signatures, content address).
func key(pi nixstore.PathInfo) string {
	var refs []string
	for _, r := range pi.References {
		refs = append(refs, r.String())
	}
	slices.Sort(refs)
	sigs := slices.Sorted(slices.Values(pi.Signatures))
	var deriver string
	if pi.Deriver.Name != "" {
		deriver = pi.Deriver.String()
	}
	return fmt.Sprintf("%s %s %d %s deriver=%s sigs=%s ca=%s", pi.Path, pi.NarHash, pi.NarSize, strings.Join(refs, ","), deriver, strings.Join(sigs, " "), pi.CA)
}

func keys(infos []nixstore.PathInfo) []string {
	var out []string
	for _, pi := range infos {
		out = append(out, key(pi))
	}
	slices.Sort(out)
	return out
}

// Differential: every valid path of the real store, as `nix path-info
// --json --all` gives it, equals what the database reader reads.
func TestAgainstNixPathInfo(t *testing.T) {
	nix := testenv.SetupNix(t)
	// At least one closure with references, built for this test.
	expr := `let sh = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
	  dep = sh "releng-nixdb-dep-1.0" "echo dep > $out"; in sh "releng-nixdb-root" "echo ${dep} ${dep} > $out"`
	out, err := nix.Command("nix-build", "--no-out-link", "-E", expr).Output()
	if err != nil {
		t.Fatalf("nix-build: %v", err)
	}
	root := strings.TrimSpace(string(out))
	n := nixstore.Nix{Env: nix.Env}
	all, err := n.PathInfo(context.Background(), false, "--all")
	if err != nil {
		t.Skipf("nix path-info --all: %v", err)
	}
	db, err := Open(Path(os.Getenv("NIX_STATE_DIR")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var roots []nixstore.StorePath
	for _, pi := range all {
		roots = append(roots, pi.Path)
	}
	got, err := db.Closure(nixstore.DefaultStoreDir, roots)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := keys(got), keys(all); !slices.Equal(g, w) {
		t.Errorf("the database reader has %d paths, nix path-info --all %d; first differences:\n%s", len(g), len(w), firstDiff(g, w))
	}
	// The closure of one root, references included.
	sp, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, root)
	want, err := n.PathInfo(context.Background(), true, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err = db.Closure(nixstore.DefaultStoreDir, []nixstore.StorePath{sp})
	if err != nil || len(got) != 2 || !slices.Equal(keys(got), keys(want)) {
		t.Errorf("closure of %s: %v\n got %v\nwant %v", root, err, keys(got), keys(want))
	}
	missing, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, "/nix/store/00000000000000000000000000000000-releng-not-there")
	if _, err := db.Closure(nixstore.DefaultStoreDir, []nixstore.StorePath{missing}); err == nil || !strings.Contains(err.Error(), "is not a valid path") {
		t.Errorf("a path not in the store: %v", err)
	}
}

func firstDiff(a, b []string) string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok && len(out) < 5 {
			out = append(out, "only read: "+s)
		}
	}
	for _, s := range b {
		if _, ok := slices.BinarySearch(a, s); !ok && len(out) < 10 {
			out = append(out, "only in nix: "+s)
		}
	}
	return strings.Join(out, "\n")
}

// A row committed to the write-ahead log, not yet checkpointed into the
// main file, is read (SQLite itself, through Python, writes it and holds
// the log open).
func TestWriteAheadLog(t *testing.T) {
	python := testenv.LookPath(t, "python3", "apt-get install -y python3")
	dir := t.TempDir()
	data, err := os.ReadFile(Path(os.Getenv("NIX_STATE_DIR")))
	if err != nil {
		testenv.Missing(t, "the Nix database", err.Error())
	}
	file := filepath.Join(dir, "db.sqlite")
	os.WriteFile(file, data, 0o644)
	const newPath = "/nix/store/11111111111111111111111111111111-releng-wal-test-1.0"
	script := `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("pragma wal_autocheckpoint=0")
ref = c.execute("select id, path from ValidPaths order by id limit 1").fetchone()
c.execute("begin")
c.execute("insert into ValidPaths (path, hash, registrationTime, narSize) values (?, 'sha256:abababababababababababababababababababababababababababababababab', 1, 4242)", (sys.argv[2],))
new = c.execute("select id from ValidPaths where path = ?", (sys.argv[2],)).fetchone()[0]
c.execute("insert into Refs (referrer, reference) values (?, ?)", (new, ref[0]))
c.execute("commit")
print(ref[1], flush=True)
sys.stdin.read()
`
	cmd := exec.Command(python, "-c", script, file, newPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	refPath, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	refPath = strings.TrimSpace(refPath)
	if st, err := os.Stat(file + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("no write-ahead log: %v", err)
	}
	db, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, newPath)
	got, err := db.Closure(nixstore.DefaultStoreDir, []nixstore.StorePath{sp})
	if err != nil || len(got) < 2 || got[0].NarSize != 4242 || len(got[0].References) != 1 || got[0].References[0].String() != refPath {
		t.Errorf("closure of the row in the log: %v %+v (want a reference to %s)", err, got, refPath)
	}
}

// Malformed databases are errors, never a panic or a hang.
func TestMalformed(t *testing.T) {
	data, err := os.ReadFile(Path(os.Getenv("NIX_STATE_DIR")))
	if err != nil {
		testenv.Missing(t, "the Nix database", err.Error())
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "db.sqlite")
	rng := rand.New(rand.NewSource(1))
	sp, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, "/nix/store/00000000000000000000000000000000-x")
	for i := range 300 {
		bad := slices.Clone(data)
		switch i % 3 {
		case 0:
			bad = bad[:rng.Intn(len(bad))]
		default:
			for range 1 + rng.Intn(50) {
				bad[rng.Intn(len(bad))] = byte(rng.Intn(256))
			}
		}
		os.WriteFile(file, bad, 0o644)
		db, err := Open(file)
		if err != nil {
			continue
		}
		db.Closure(nixstore.DefaultStoreDir, []nixstore.StorePath{sp})
		db.Close()
	}
	os.WriteFile(file, []byte("not a database"), 0o644)
	if _, err := Open(file); err == nil {
		t.Error("a text file opens as a database")
	}
}
