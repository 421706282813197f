package nixdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

func TestVarint(t *testing.T) {
	tests := []struct {
		v    uint64
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "8100"}, {240, "8170"}, {16383, "ff7f"}, {16384, "818000"},
		{1<<56 - 1, "ffffffffffffff7f"}, {1 << 56, "80c0808080808080" + "00"}, {^uint64(0), "ffffffffffffffffff"},
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(putVarint(nil, tc.v)); got != tc.want {
			t.Errorf("varint(%d) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestRecord(t *testing.T) {
	tests := []struct {
		vals []any
		want string
	}{
		// header size 4, types NULL, 8 (zero), 9 (one); no body.
		{[]any{nil, int64(0), int64(1)}, "04000809"},
		// header 3; int8 (1) -1; text "ab" (2*2+13 = 17 = 0x11).
		{[]any{int64(-1), "ab"}, "030111ff6162"},
		{[]any{int64(300)}, "0202012c"},
		{[]any{int64(1) << 40}, "0205010000000000"},
	}
	for _, tc := range tests {
		got, err := record(tc.vals...)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("record(%v) = %x, want %s", tc.vals, got, tc.want)
		}
	}
	if _, err := record(3.5); err == nil {
		t.Error("a float was accepted")
	}
}

// fakePaths makes n store paths with random references to earlier paths.
func fakePaths(n int, seed int64) []Path {
	rng := rand.New(rand.NewSource(seed))
	paths := make([]Path, n)
	for i := range paths {
		name := fmt.Sprintf("pkg%d-%d.%d", i, rng.Intn(10), rng.Intn(100))
		h := sha256.Sum256([]byte(name))
		paths[i] = Path{
			Path:    "/nix/store/" + nixBase32ish(h[:]) + "-" + name,
			NarHash: sha256.Sum256([]byte(name + "nar")),
			NarSize: uint64(rng.Int63n(1 << 40)),
		}
		if rng.Intn(3) == 0 {
			paths[i].Deriver = "/nix/store/" + nixBase32ish(h[1:]) + "-" + name + ".drv"
		}
		if rng.Intn(5) == 0 {
			paths[i].CA = "fixed:r:sha256:" + nixBase32ish(h[2:])
		}
		if i > 0 {
			for k := rng.Intn(min(i, 8) + 1); k > 0; k-- {
				paths[i].References = append(paths[i].References, paths[rng.Intn(i)].Path)
			}
		}
		if rng.Intn(4) == 0 {
			paths[i].References = append(paths[i].References, paths[i].Path)
		}
	}
	return paths
}

func nixBase32ish(b []byte) string {
	const alpha = "0123456789abcdfghijklmnpqrsvwxyz"
	var s strings.Builder
	for i := 0; i < 32; i++ {
		s.WriteByte(alpha[int(b[i%len(b)]+byte(i))%32])
	}
	return s.String()
}

func sqlite(t *testing.T, db string, query string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-readonly", db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v\n%s", query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// The database is valid SQLite, whatever its size: one page per table, or
// b-trees several levels deep.
func TestSQLiteReadsIt(t *testing.T) {
	testenv.LookPath(t, "sqlite3", "apt-get install -y sqlite3")
	for _, n := range []int{0, 1, 60, 3000, 40000} { // 40000: index b-trees three levels deep
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			paths := fakePaths(n, int64(n))
			data, err := Write(paths, 1)
			if err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(t.TempDir(), "db.sqlite")
			if err := os.WriteFile(db, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := sqlite(t, db, "pragma integrity_check"); got != "ok" {
				t.Fatalf("integrity_check: %s", got)
			}
			if got := sqlite(t, db, "pragma foreign_key_check"); got != "" {
				t.Fatalf("foreign_key_check: %s", got)
			}
			if got := sqlite(t, db, "select count(*) from ValidPaths"); got != fmt.Sprint(n) {
				t.Errorf("%s paths, want %d", got, n)
			}
			refs := 0
			for _, p := range paths {
				seen := map[string]bool{}
				for _, r := range p.References {
					if !seen[r] {
						seen[r] = true
						refs++
					}
				}
			}
			if got := sqlite(t, db, "select count(*) from Refs"); got != fmt.Sprint(refs) {
				t.Errorf("%s references, want %d", got, refs)
			}
			if n == 0 {
				return
			}
			// Lookups through each index give what the data says.
			p := paths[n/2]
			got := sqlite(t, db, fmt.Sprintf("select hash, narSize, coalesce(deriver,''), coalesce(ca,'') from ValidPaths indexed by sqlite_autoindex_ValidPaths_1 where path = '%s'", p.Path))
			want := fmt.Sprintf("sha256:%x|%d|%s|%s", p.NarHash, p.NarSize, p.Deriver, p.CA)
			if got != want {
				t.Errorf("row of %s = %s, want %s", p.Path, got, want)
			}
			var wantRefs []string
			seen := map[string]bool{}
			for _, r := range p.References {
				if !seen[r] {
					seen[r] = true
					wantRefs = append(wantRefs, r)
				}
			}
			sort.Strings(wantRefs)
			got = sqlite(t, db, fmt.Sprintf("select v2.path from Refs indexed by IndexReferrer join ValidPaths v1 on v1.id = referrer join ValidPaths v2 on v2.id = reference where v1.path = '%s' order by v2.path", p.Path))
			if got != strings.Join(wantRefs, "\n") {
				t.Errorf("references of %s:\n%s\nwant\n%s", p.Path, got, strings.Join(wantRefs, "\n"))
			}
			if got := sqlite(t, db, "select seq from sqlite_sequence where name = 'ValidPaths'"); got != fmt.Sprint(n) {
				t.Errorf("sqlite_sequence = %s", got)
			}
			// Writable: SQLite (and so Nix) can add to it.
			if _, err := exec.Command("sqlite3", db, "pragma journal_mode=wal; insert into ValidPaths (path, hash, registrationTime) values ('/nix/store/x', 'sha256:00', 1); pragma integrity_check").CombinedOutput(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	paths := fakePaths(200, 3)
	a, err := Write(paths, 1)
	if err != nil {
		t.Fatal(err)
	}
	rev := append([]Path(nil), paths...)
	sort.Slice(rev, func(i, j int) bool { return rev[i].Path > rev[j].Path })
	b, err := Write(rev, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("input order changed the database")
	}
}

func TestErrors(t *testing.T) {
	a := Path{Path: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a", References: []string{"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"}}
	if _, err := Write([]Path{a}, 1); err == nil || !strings.Contains(err.Error(), "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b") {
		t.Errorf("missing reference: %v", err)
	}
	b := Path{Path: a.Path}
	if _, err := Write([]Path{b, b}, 1); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
}

// Real Nix reads the database: `nix path-info` lists the paths with their
// hashes, and `nix-store --verify --check-contents` finds them intact.
func TestNixAcceptsIt(t *testing.T) {
	nix := testenv.SetupNix(t)
	work := t.TempDir()
	// A closure: c → b → a (built with /bin/sh), plus a path added as is.
	dir := filepath.Join(work, "data")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "f"), []byte(fmt.Sprint("nixdb test ", os.Getpid())), 0o644)
	added := run(t, nix, "nix-store", "--add", dir)
	expr := fmt.Sprintf(`let
  a = derivation { name = "nixdb-a"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo %d > $out"]; };
  b = derivation { name = "nixdb-b"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${a} > $out"]; };
in derivation { name = "nixdb-c"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${b} ${builtins.storePath %q} $out > $out"]; }`, os.Getpid(), added)
	c := run(t, nix, "nix-build", "--no-out-link", "-E", expr)
	js := run(t, nix, "nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive", c)
	infos, err := nixstore.ParsePathInfo([]byte(js), "nix path-info", nixstore.DefaultStoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 4 {
		t.Fatalf("closure of %s has %d paths, want 4", c, len(infos))
	}
	var paths []Path
	root := filepath.Join(work, "root")
	for _, pi := range infos {
		p := Path{Path: pi.Path.String(), NarHash: pi.NarHash, NarSize: pi.NarSize, Deriver: deriver(pi), CA: pi.CA}
		for _, r := range pi.References {
			p.References = append(p.References, r.String())
		}
		paths = append(paths, p)
		// Copy the path into the chroot store, as a container would have it:
		// releng's NAR of it, unpacked by Nix.
		var buf bytes.Buffer
		if _, err := nar.DumpPath(&buf, pi.Path.String(), nar.DumpOptions{}); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, "nix/store"), 0o755)
		restore := nix.Command("nix-store", "--restore", filepath.Join(root, "nix/store", pi.Path.Base()))
		restore.Stdin = &buf
		if out, err := restore.CombinedOutput(); err != nil {
			t.Fatalf("nix-store --restore %s: %v\n%s", pi.Path, err, out)
		}
	}
	data, err := Write(paths, 1)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, Dir), 0o755)
	os.WriteFile(filepath.Join(root, DBFile), data, 0o644)
	os.WriteFile(filepath.Join(root, SchemaFile), []byte(SchemaVersion), 0o644)

	out := run(t, nix, "nix", "--extra-experimental-features", "nix-command", "path-info", "--store", root, "--json", "--recursive", c)
	got, err := nixstore.ParsePathInfo([]byte(out), "nix path-info --store", nixstore.DefaultStoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(infos) {
		t.Fatalf("nix path-info in the image store lists %d paths, want %d", len(got), len(infos))
	}
	for i := range got {
		a, b := got[i], infos[i]
		if a.Path != b.Path || a.NarHash != b.NarHash || a.NarSize != b.NarSize || fmt.Sprint(a.References) != fmt.Sprint(b.References) || a.CA != b.CA {
			t.Errorf("path info differs:\n image %+v\n host  %+v", a, b)
		}
	}
	verify := nix.Command("nix-store", "--store", root, "--verify", "--check-contents")
	vout, err := verify.CombinedOutput()
	if err != nil || bytes.Contains(vout, []byte("modified")) || bytes.Contains(vout, []byte("invalid")) {
		t.Fatalf("nix-store --verify --check-contents: %v\n%s", err, vout)
	}
	// And Nix can register more paths in it.
	extra := filepath.Join(work, "extra")
	os.WriteFile(extra, []byte("more"), 0o644)
	run(t, nix, "nix-store", "--store", root, "--add", extra)
	if n := strings.Count(run(t, nix, "nix", "--extra-experimental-features", "nix-command", "path-info", "--store", root, "--all"), "\n") + 1; n != len(infos)+1 {
		t.Errorf("after nix-store --add, the image store has %d paths, want %d", n, len(infos)+1)
	}
}

func deriver(pi nixstore.PathInfo) string {
	if pi.Deriver.IsZero() {
		return ""
	}
	return pi.Deriver.String()
}

func run(t *testing.T, nix *testenv.Nix, name string, args ...string) string {
	t.Helper()
	cmd := nix.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
