package closure

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/nixstore"
)

func TestSplitName(t *testing.T) {
	for _, tc := range []struct{ name, pkg, ver, output string }{
		{"hello-2.12.1", "hello", "2.12.1", ""},
		{"hello-2.12.1.drv", "hello", "2.12.1", ""},
		{"gcc-12.2.0-lib", "gcc", "12.2.0", "lib"},
		{"util-linux-2.38.1-bin", "util-linux", "2.38.1", "bin"},
		{"glibc-2.37-8-dev", "glibc", "2.37-8", "dev"},
		{"gcc-12.2.0-lib64", "gcc", "12.2.0", "lib64"},
		{"bash-interactive-5.2-p15-man", "bash-interactive", "5.2-p15", "man"},
		{"perl5.36.0-Module-Build-0.4231", "perl5.36.0-Module-Build", "0.4231", ""},
		{"python3.11-setuptools-67.4.0", "python3.11-setuptools", "67.4.0", ""},
		// No version before it: not an output name.
		{"hello-wrapper", "hello-wrapper", "", ""},
		{"releng-closure-readme", "releng-closure-readme", "", ""},
		{"source", "source", "", ""},
		{"foo-1.0-Bin", "foo", "1.0-Bin", ""},
		{"foo-1.0-man.drv", "foo", "1.0", "man"},
	} {
		pkg, ver, output := SplitName(tc.name)
		if pkg != tc.pkg || ver != tc.ver || output != tc.output {
			t.Errorf("SplitName(%q) = %q, %q, %q; want %q, %q, %q", tc.name, pkg, ver, output, tc.pkg, tc.ver, tc.output)
		}
	}
}

// store builds path infos from "NAME SIZE REF…" lines; hashes are made up.
func store(t *testing.T, lines ...string) (map[string]nixstore.StorePath, []nixstore.PathInfo) {
	t.Helper()
	paths := map[string]nixstore.StorePath{}
	for i, l := range lines {
		name := strings.Fields(l)[0]
		sp, err := nixstore.ParseBaseName(nixstore.DefaultStoreDir, fmt.Sprintf("%032d-%s", i, name))
		if err != nil {
			t.Fatal(err)
		}
		paths[name] = sp
	}
	var infos []nixstore.PathInfo
	for _, l := range lines {
		f := strings.Fields(l)
		pi := nixstore.PathInfo{Path: paths[f[0]]}
		fmt.Sscan(f[1], &pi.NarSize)
		for _, r := range f[2:] {
			pi.References = append(pi.References, paths[r])
		}
		infos = append(infos, pi)
	}
	return paths, infos
}

func TestReport(t *testing.T) {
	p, infos := store(t,
		"app-1.0 1000 lib-2.0 lib-2.0-dev",
		"lib-2.0 300 lib-2.0",
		"lib-2.0-dev 300",
		"tool-3 50 lib-2.1",
		"lib-2.1 700 lib-2.2 lib-2.3",
		"lib-2.2 0", "lib-2.3 0",
		"unrelated-1 99999",
	)
	r, err := NewReport(infos, []nixstore.StorePath{p["app-1.0"], p["tool-3"], p["app-1.0"]}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Paths != 7 || r.ClosureSize != 2350 || len(r.Roots) != 3 || r.Roots[0].ClosureSize != 1600 || r.Roots[0].Paths != 3 || r.Roots[1].ClosureSize != 750 {
		t.Errorf("report %+v", r)
	}
	// Largest first; equal sizes by package, version, output.
	var largest []string
	for _, l := range r.Largest {
		largest = append(largest, l.Path[44:]+"/"+l.Output)
	}
	if strings.Join(largest, " ") != "app-1.0/ lib-2.1/ lib-2.0/" {
		t.Errorf("largest %v", largest)
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	if !strings.Contains(buf.String(), "PACKAGE  PATHS  SIZE     VERSIONS\nlib      5      1.3 KiB  2.0 … 2.3 (4 versions)\napp      1      1000 B   1.0\ntool     1      50 B     3\n") {
		t.Errorf("report text:\n%s", buf.String())
	}
	if r, _ := NewReport(infos, []nixstore.StorePath{p["app-1.0"]}, 0); len(r.Largest) != 3 {
		t.Errorf("--top 0 lists %d of 3 paths", len(r.Largest))
	}
	if _, err := NewReport(infos[1:], []nixstore.StorePath{p["app-1.0"]}, 0); err == nil || !strings.Contains(err.Error(), "app-1.0 is not in") {
		t.Errorf("missing root: %v", err)
	}
}

func TestDiff(t *testing.T) {
	p, infos := store(t,
		"root-1 10 a-1.0 b-2.0 c-1.01 d-1 e-1 same-1",
		"root-2 10 a-1.1 b-1.9 c-1.1 d-1-x f-1 same-1",
		"a-1.0 100", "a-1.1 150",
		"b-2.0 100", "b-1.9 100",
		"c-1.01 100", "c-1.1 100",
		"d-1 100", "d-1-x 120",
		"e-1 5",
		"f-1 7",
		"same-1 1000",
	)
	d, err := NewDiff(Set{Name: "one", Roots: []nixstore.StorePath{p["root-1"]}, Infos: infos}, Set{Name: "two", Roots: []nixstore.StorePath{p["root-2"]}, Infos: infos})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, fmt.Sprintf("%s %s %v→%v %+d", c.Package, c.Kind, c.OldVersions, c.NewVersions, c.Delta))
	}
	want := []string{
		"a upgraded [1.0]→[1.1] +50",
		"b downgraded [2.0]→[1.9] +0",
		"c changed [1.01]→[1.1] +0", // 1.01 = 1.1 to compareVersions
		"d size [1]→[1] +20",        // output x: same version
		"e removed [1]→[] -5",
		"f added []→[1] +7",
		"root upgraded [1]→[2] +0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || d.Unchanged != 1 || d.Delta != 72 {
		t.Errorf("diff: unchanged %d, delta %d\n%s", d.Unchanged, d.Delta, strings.Join(got, "\n"))
	}
	var buf bytes.Buffer
	d.WriteText(&buf)
	if !strings.Contains(buf.String(), "total: 7 → 7 paths, 1.4 KiB → 1.5 KiB (+72 B, +5.1%); 1 package unchanged\n") ||
		!strings.Contains(buf.String(), "e        removed     1 → ∅       -5 B\n") {
		t.Errorf("diff text:\n%s", buf.String())
	}
	// The same path twice: nothing changed.
	one := Set{Name: "one", Roots: []nixstore.StorePath{p["root-1"]}, Infos: infos}
	d, _ = NewDiff(one, one)
	buf.Reset()
	d.WriteText(&buf)
	if len(d.Changes) != 0 || d.Changes == nil || !strings.HasSuffix(buf.String(), "(0 B, +0.0%); 7 packages unchanged\n") {
		t.Errorf("diff of a path with itself: %+v\n%s", d, buf.String())
	}
}

func TestWhy(t *testing.T) {
	// dep is reachable from app through a long chain (app → a → b → c →
	// dep) and a short one (app → z → dep); z sorts after a, so a walk
	// depth first would find the long one.
	p, infos := store(t,
		"app-1 10 a-1 z-1 app-1",
		"a-1 20 b-1",
		"b-1 30 c-1",
		"c-1 40 dep-2.0",
		"z-1 50 dep-2.0 perl-5.36",
		"dep-2.0 60",
		"perl-5.36 70",
		"other-1 80",
	)
	for _, tc := range []struct {
		dep   string
		chain []string
		err   string
	}{
		{dep: p["dep-2.0"].String(), chain: []string{"app-1 280 7", "z-1 180 3", "dep-2.0 60 1"}},
		{dep: "dep", chain: []string{"app-1 280 7", "z-1 180 3", "dep-2.0 60 1"}},
		{dep: "c-1", chain: []string{"app-1 280 7", "a-1 150 4", "b-1 130 3", "c-1 100 2"}},
		{dep: "app", chain: []string{"app-1 280 7"}},
		{dep: "other", err: "other is not in the closure of " + p["app-1"].String() + " (7 paths)"},
		{dep: p["other-1"].String(), err: "is not in the closure"},
	} {
		w, err := NewWhy(infos, p["app-1"], tc.dep)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("why %s: %v, want %q", tc.dep, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("why %s: %v", tc.dep, err)
		}
		var got []string
		for _, l := range w.Chain {
			got = append(got, fmt.Sprintf("%s %d %d", l.Path[44:], l.ClosureSize, l.Paths))
		}
		if strings.Join(got, " | ") != strings.Join(tc.chain, " | ") {
			t.Errorf("why %s: %v, want %v", tc.dep, got, tc.chain)
		}
	}
	w, _ := NewWhy(infos, p["app-1"], "dep")
	var buf bytes.Buffer
	w.WriteText(&buf)
	want := "CLOSURE SIZE  PATHS  NAR SIZE  PATH\n280 B         7      10 B      " + p["app-1"].String() + "\n180 B         3      50 B      → " + p["z-1"].String() + "\n"
	if !strings.Contains(buf.String(), "through 2 references:\n") || !strings.Contains(buf.String(), want) {
		t.Errorf("why text:\n%s", buf.String())
	}
}
