package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// closureNix builds two closures of /bin/sh derivations (no nixpkgs): from
// old to new, libfoo goes from 1.0 to 1.2 (both with a man output), libbar
// 0.5 is added, the app (no version) changes its list of dependencies,
// and a text file without a version stays.
const closureNix = `let
  sh = name: script: extra: derivation ({ inherit name; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" script ]; } // extra);
  readme = builtins.toFile "releng-closure-readme" "A dependency without a version.\n";
  libfoo = v: n: sh "releng-closure-libfoo-${v}" "mkdir $out $man; echo ${readme} > $out/readme; seq 1 ${n} > $out/data; seq 1 50 > $man/libfoo.1" { outputs = [ "out" "man" ]; };
  libbar = sh "releng-closure-libbar-0.5" "seq 1 3000 > $out" { };
  app = deps: sh "releng-closure-app" "mkdir $out; for d in ${toString deps}; do echo $d >> $out/deps; done; seq 1 20000 > $out/data" { };
  foo1 = libfoo "1.0" "1000";
  foo2 = libfoo "1.2" "1500";
in {
  old = app [ foo1 foo1.man ];
  new = app [ foo2 foo2.man libbar ];
}
`

// closureEnv builds the two closures into the real store, with the
// environment set for the nix that releng runs, and returns the nix
// configuration, the roots and a replacer from "{NAME}" (and "{old}",
// "{new}" for the two apps) to the store paths.
func closureEnv(t *testing.T) (nix *testenv.Nix, old, new string, paths *strings.Replacer) {
	t.Helper()
	nix = testenv.SetupNix(t)
	for _, kv := range nix.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	file := filepath.Join(t.TempDir(), "closure.nix")
	if err := os.WriteFile(file, []byte(closureNix), 0o644); err != nil {
		t.Fatal(err)
	}
	nixOut := func(name string, args ...string) string {
		t.Helper()
		out, err := nix.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	old = nixOut("nix-build", "--no-out-link", file, "-A", "old")
	new = nixOut("nix-build", "--no-out-link", file, "-A", "new")
	pairs := []string{"{old}", old, "{new}", new}
	for _, p := range strings.Fields(nixOut("nix-store", "--query", "--requisites", old, new)) {
		if p != old && p != new {
			pairs = append(pairs, "{"+filepath.Base(p)[33:]+"}", p)
		}
	}
	return nix, old, new, strings.NewReplacer(pairs...)
}

func TestClosureReportAndDiff(t *testing.T) {
	nix, old, new, paths := closureEnv(t)

	out, errOut, code := run(t, "closure", "report", old, new, "--top", "5")
	want := paths.Replace(`closure of 2 roots: 8 paths, 239.7 KiB (245448 bytes)

ROOT                                                            PATHS  CLOSURE SIZE
{old}  4      111.8 KiB
{new}  5      128.0 KiB

largest paths (5 of 8):
SIZE       PATH
107.0 KiB  {new}
106.9 KiB  {old}
13.7 KiB   {releng-closure-libbar-0.5}
6.8 KiB    {releng-closure-libfoo-1.2}
4.3 KiB    {releng-closure-libfoo-1.0}

packages (4):
PACKAGE                PATHS  SIZE       VERSIONS
releng-closure-app     2      213.9 KiB  ε
releng-closure-libbar  1      13.7 KiB   0.5
releng-closure-libfoo  4      11.9 KiB   1.0, 1.2
releng-closure-readme  1      144 B      ε
`)
	if code != 0 || out != want {
		t.Errorf("closure report: exit %d, stderr %q\n got:\n%s\nwant:\n%s", code, errOut, out, want)
	}

	out, errOut, code = run(t, "closure", "diff", old, new)
	want = paths.Replace(`old:  {old}  4 paths, 111.8 KiB
new:  {new}  5 paths, 128.0 KiB

PACKAGE                CHANGE    VERSIONS   SIZE
releng-closure-app     size      ε          +72 B
releng-closure-libbar  added     ∅ → 0.5    +13.7 KiB
releng-closure-libfoo  upgraded  1.0 → 1.2  +2.4 KiB

total: 4 → 5 paths, 111.8 KiB → 128.0 KiB (+16.2 KiB, +14.5%); 1 package unchanged
`)
	if code != 0 || out != want {
		t.Errorf("closure diff: exit %d, stderr %q\n got:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	// The other way round: a downgrade and a removal.
	out, _, code = run(t, "closure", "diff", new, old)
	if code != 0 || !strings.Contains(out, "releng-closure-libbar  removed     0.5 → ∅    -13.7 KiB\n") ||
		!strings.Contains(out, "releng-closure-libfoo  downgraded  1.2 → 1.0  -2.4 KiB\n") {
		t.Errorf("closure diff NEW OLD: exit %d\n%s", code, out)
	}

	// --json: the exact numbers.
	out, errOut, code = run(t, "--json", "closure", "diff", old, new)
	var d struct {
		Old, New struct {
			Path        string
			Paths       int
			ClosureSize uint64 `json:"closure_size"`
		}
		Delta   int64
		Changes []struct {
			Package     string
			Change      string
			OldVersions []string `json:"old_versions"`
			NewVersions []string `json:"new_versions"`
			OldSize     uint64   `json:"old_size"`
			NewSize     uint64   `json:"new_size"`
			Delta       int64
		}
		Unchanged int
	}
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil {
		t.Fatalf("closure diff --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if d.Old.Path != old || d.New.Path != new || d.Old.ClosureSize != 114504 || d.New.ClosureSize != 131088 || d.Delta != 16584 || d.Unchanged != 1 || len(d.Changes) != 3 {
		t.Errorf("closure diff --json: %+v", d)
	} else if c := d.Changes[2]; c.Package != "releng-closure-libfoo" || c.Change != "upgraded" || c.OldVersions[0] != "1.0" || c.NewVersions[0] != "1.2" || c.OldSize != 4432+424 || c.NewSize != 6936+424 || c.Delta != 2504 {
		t.Errorf("libfoo change: %+v", c)
	} else if c := d.Changes[1]; c.Change != "added" || c.OldVersions == nil || len(c.OldVersions) != 0 {
		t.Errorf("libbar change: %+v", c)
	}

	// Differential: Nix's closureSize of each root, and the sum of the NAR
	// sizes of `nix path-info -rS` over the union, equal the report's.
	out, errOut, code = run(t, "--json", "closure", "report", old, new)
	var rep struct {
		Roots []struct {
			Path        string
			Paths       int
			ClosureSize uint64 `json:"closure_size"`
		}
		Paths       int
		ClosureSize uint64 `json:"closure_size"`
		Largest     []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("closure report --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	roots := nixClosureSizes(t, nix, false, old, new)
	union := nixClosureSizes(t, nix, true, old, new)
	var sum uint64
	for _, s := range union {
		sum += s.narSize
	}
	if len(rep.Roots) != 2 || rep.Roots[0].Path != old || rep.Roots[0].ClosureSize != roots[old].closureSize || rep.Roots[1].ClosureSize != roots[new].closureSize {
		t.Errorf("roots %+v, nix path-info -S says %+v", rep.Roots, roots)
	}
	if rep.Paths != len(union) || rep.ClosureSize != sum || len(rep.Largest) != 8 {
		t.Errorf("report: %d paths, %d bytes, %d largest; nix path-info -rS: %d paths, %d bytes", rep.Paths, rep.ClosureSize, len(rep.Largest), len(union), sum)
	}
	if rep.Roots[1].Paths != 5 || union[new].closureSize != rep.Roots[1].ClosureSize {
		t.Errorf("new root: %+v, nix: %+v", rep.Roots[1], union[new])
	}

	// Without releng.toml, from -C DIR with a relative link (./result),
	// and a derivation's closure (its build inputs).
	dir := t.TempDir()
	os.Symlink(new, filepath.Join(dir, "result"))
	out, errOut, code = run(t, "-C", dir, "--json", "closure", "report", "result")
	if code != 0 || !strings.Contains(out, `"closure_size": 131088`) {
		t.Errorf("report ./result from -C: exit %d\n%s%s", code, out, errOut)
	}
	drv, err := nix.Command("nix-store", "--query", "--deriver", new).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, "closure", "report", strings.TrimSpace(string(drv)))
	if code != 0 || !strings.Contains(out, "releng-closure-libbar-0.5.drv\n") || strings.Contains(out, "libbar-0.5\n") {
		t.Errorf("report of a .drv: exit %d\n%s%s", code, out, errOut)
	}

	// Bad input.
	missing := "/nix/store/00000000000000000000000000000000-releng-closure-missing"
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"report", missing}, 1, []string{"closure report: ", missing, "is not valid"}},
		{[]string{"diff", old, missing}, 1, []string{"closure diff: ", missing, "is not valid"}},
		{[]string{"report", file}, 1, []string{file + " is not in the Nix store /nix/store"}},
		{[]string{"diff", filepath.Join(dir, "nope"), new}, 1, []string{"nope does not exist (want a store path in /nix/store)"}},
		{[]string{"diff", "2.93.0@staging", new}, 2, []string{"closure diff: VERSION@ENV reads the environments of releng.toml: ", "releng init"}},
		{[]string{"why", new, "perl"}, 1, []string{"closure why: perl is not in the closure of " + new + " (5 paths)"}},
		{[]string{"why", missing, "perl"}, 1, []string{"closure why: ", missing, "is not valid"}},
		{[]string{"why", new}, 2, []string{"closure why takes a store path and a dependency"}},
		{[]string{"why", "--from", "file:///x", "--closure-file", file, new, "x"}, 2, []string{"two sources"}},
		{[]string{"report"}, 2, []string{"no store paths given"}},
		{[]string{"report", "--top", "-1", new}, 2, []string{"--top must be 0"}},
		{[]string{"diff", old}, 2, []string{"two store paths or VERSION@ENV, OLD and NEW; got [\"/nix/store/"}},
		{[]string{"diff", strings.TrimSpace(string(drv)), old}, 2, []string{"either derivations (.drv) or other store paths"}},
		{[]string{"report", "--store-dir", dir, new}, 2, []string{"--store-dir needs --closure-file"}},
	} {
		out, errOut, code := run(t, append([]string{"closure"}, tc.args...)...)
		if code != tc.code || out != "" {
			t.Errorf("closure %v: exit %d (want %d), stdout %q, stderr %q", tc.args, code, tc.code, out, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("closure %v: stderr %q lacks %q", tc.args, errOut, w)
			}
		}
	}
}

type nixSizes struct{ narSize, closureSize uint64 }

// nixClosureSizes runs `nix path-info -S --json` (with -r, recursive) and
// returns the sizes by path, from either JSON shape.
func nixClosureSizes(t *testing.T, nix *testenv.Nix, recursive bool, paths ...string) map[string]nixSizes {
	t.Helper()
	args := []string{"path-info", "-S", "--json"}
	if recursive {
		args = append(args, "-r")
	}
	out, err := nix.Command("nix", append(args, paths...)...).Output()
	if err != nil {
		t.Fatalf("nix %v: %v", args, err)
	}
	type info struct {
		Path        string
		NarSize     uint64
		ClosureSize uint64
	}
	var arr []info
	var obj map[string]info
	if err := json.Unmarshal(out, &arr); err != nil {
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("nix path-info -S --json: %v\n%s", err, out)
		}
	}
	sizes := map[string]nixSizes{}
	for _, i := range arr {
		sizes[i.Path] = nixSizes{i.NarSize, i.ClosureSize}
	}
	for p, i := range obj {
		sizes[p] = nixSizes{i.NarSize, i.ClosureSize}
	}
	return sizes
}

// The closure-file input of `cache push` works too, without Nix.
func TestClosureReportClosureFile(t *testing.T) {
	storeDir, file, paths := cacheStore(t)
	out, errOut, code := run(t, "--json", "closure", "report", "--store-dir", storeDir, "--closure-file", file, paths[1])
	var rep struct {
		Paths    int
		Packages []struct {
			Name     string
			Versions []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Paths != 2 || len(rep.Packages) != 2 {
		t.Fatalf("exit %d, %v: %s%s", code, err, out, errOut)
	}
	got := map[string]string{}
	for _, p := range rep.Packages {
		got[p.Name] = strings.Join(p.Versions, ",")
	}
	if got["a"] != "1.0" || got["b"] != "" {
		t.Errorf("packages %v", got)
	}
	_, errOut, code = run(t, "closure", "diff", "--store-dir", storeDir, "--closure-file", file, paths[0], filepath.Join(storeDir, "00000000000000000000000000000000-x"))
	if code != 1 || !strings.Contains(errOut, "00000000000000000000000000000000-x is not in "+file) {
		t.Errorf("path not in the closure file: exit %d, %s", code, errOut)
	}
}

// whyNix builds a closure where the dependency is reachable through a
// chain of four references and one of two.
const whyNix = `let
  sh = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" script ]; };
  dep = sh "releng-why-dep-1.0" "seq 1 100 > $out";
  c = sh "releng-why-c" "echo ${dep} > $out";
  b = sh "releng-why-b" "echo ${c} > $out";
  a = sh "releng-why-a" "echo ${b} > $out";
  z = sh "releng-why-z" "echo ${dep} > $out";
in sh "releng-why-root" "echo ${a} ${z} > $out"
`

func TestClosureWhyLocal(t *testing.T) {
	nix, _, _, _ := closureEnv(t)
	file := filepath.Join(t.TempDir(), "why.nix")
	os.WriteFile(file, []byte(whyNix), 0o644)
	out, err := nix.Command("nix-build", "--no-out-link", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(out))
	sizes := nixClosureSizes(t, nix, true, root)
	var dep, z string
	for p := range sizes {
		switch {
		case strings.HasSuffix(p, "-releng-why-dep-1.0"):
			dep = p
		case strings.HasSuffix(p, "-releng-why-z"):
			z = p
		}
	}
	for _, d := range []string{dep, "releng-why-dep", "releng-why-dep-1.0"} {
		out, errOut, code := run(t, "--json", "closure", "why", root, d)
		var w struct {
			Chain []struct {
				Path        string
				NarSize     uint64 `json:"nar_size"`
				ClosureSize uint64 `json:"closure_size"`
			}
		}
		if err := json.Unmarshal([]byte(out), &w); code != 0 || err != nil || len(w.Chain) != 3 {
			t.Fatalf("closure why %s: exit %d, %v\n%s%s", d, code, err, out, errOut)
		}
		for i, want := range []string{root, z, dep} {
			l := w.Chain[i]
			if l.Path != want || l.NarSize != sizes[want].narSize || l.ClosureSize != sizes[want].closureSize {
				t.Errorf("why %s: link %d is %+v, want %s with nix path-info -S's %+v", d, i, l, want, sizes[want])
			}
		}
	}
	text, _, code := run(t, "closure", "why", root, dep)
	if code != 0 || !strings.Contains(text, " depends on "+dep+" through 2 references:\n") || !strings.Contains(text, "→ "+z+"\n") {
		t.Errorf("closure why text: exit %d\n%s", code, text)
	}
}
