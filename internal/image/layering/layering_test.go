package layering

import (
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sp makes a store path with a fixed-width fake hash derived from name, so
// tests read like the graphs they describe.
func sp(hash, name string) string {
	h := (hash + strings.Repeat("0", 32))[:32]
	return "/nix/store/" + h + "-" + name
}

func graph(t testing.TB, edges map[string][]string, sizes map[string]int64) *Graph {
	t.Helper()
	var nodes []Node
	for p, refs := range edges {
		nodes = append(nodes, Node{Path: p, Size: sizes[p], References: refs})
	}
	g, err := NewGraph(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPopularityKnownValues(t *testing.T) {
	foo, bar, baz, tux := sp("a", "foo"), sp("b", "bar"), sp("c", "baz"), sp("d", "tux")
	g := graph(t, map[string][]string{
		foo: {bar, baz, foo}, // the self-reference is dropped
		bar: {baz},
		baz: {tux},
		tux: {},
	}, nil)
	pop := g.Popularity()
	for p, want := range map[string]int64{foo: 1, bar: 2, baz: 4, tux: 6} {
		if pop[p].Cmp(big.NewInt(want)) != 0 {
			t.Errorf("pop(%s) = %s, want %d", p, pop[p], want)
		}
	}
	if got, want := Rank(g.Paths(), pop), []string{tux, baz, bar, foo}; !reflect.DeepEqual(got, want) {
		t.Errorf("rank = %v, want %v", got, want)
	}
}

func TestPopularityTable(t *testing.T) {
	a, b, c, d, e := sp("1", "a"), sp("2", "b"), sp("3", "c"), sp("4", "d"), sp("5", "e")
	tests := []struct {
		name  string
		edges map[string][]string
		want  map[string]int64
	}{
		{"single", map[string][]string{a: nil}, map[string]int64{a: 1}},
		{"two roots share a leaf", map[string][]string{a: {c}, b: {c}, c: nil}, map[string]int64{a: 1, b: 1, c: 4}},
		{"chain", map[string][]string{a: {b}, b: {c}, c: nil}, map[string]int64{a: 1, b: 2, c: 3}},
		// a→b→d, a→c→d, d→e: H(a,d)=1+H(b,d)+H(c,d)=1+2+2=5; H(a,e)=1+H(b,e)+H(c,e)=1+3+3=7.
		{"diamond", map[string][]string{a: {b, c}, b: {d}, c: {d}, d: {e}, e: nil}, map[string]int64{a: 1, b: 2, c: 2, d: 5, e: 7}},
		{"disconnected", map[string][]string{a: nil, b: {c}, c: nil}, map[string]int64{a: 1, b: 1, c: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pop := graph(t, tc.edges, nil).Popularity()
			for p, want := range tc.want {
				if pop[p].Cmp(big.NewInt(want)) != 0 {
					t.Errorf("pop(%s) = %s, want %d", filepath.Base(p), pop[p], want)
				}
			}
		})
	}
}

// A ladder of diamonds has 2^k reference chains: popularity overflows 64
// bits and must still be exact.
func TestPopularityBeyond64Bits(t *testing.T) {
	edges := map[string][]string{}
	const k = 70
	top := sp("top", "top")
	prev := []string{top}
	for i := 0; i < k; i++ {
		l, r := sp(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i)), sp(fmt.Sprintf("r%d", i), fmt.Sprintf("r%d", i))
		for _, p := range prev {
			edges[p] = []string{l, r}
		}
		prev = []string{l, r}
	}
	bottom := sp("bottom", "bottom")
	for _, p := range prev {
		edges[p] = []string{bottom}
	}
	edges[bottom] = nil
	g := graph(t, edges, nil)
	if _, ok := g.popularity64(); ok {
		t.Fatal("expected the 64-bit computation to overflow")
	}
	pop := g.Popularity()
	big1 := g.popularityBig()
	for i, n := range g.nodes {
		if pop[n.Path].Cmp(big1[i]) != 0 {
			t.Fatalf("%s: %s != %s", n.Path, pop[n.Path], big1[i])
		}
	}
	if pop[bottom].BitLen() <= 64 {
		t.Errorf("pop(bottom) = %s fits 64 bits; the test does not exercise big integers", pop[bottom])
	}
	// On a small graph both computations agree.
	small := graph(t, map[string][]string{sp("a", "a"): {sp("b", "b")}, sp("b", "b"): nil}, nil)
	p64, ok := small.popularity64()
	if !ok || p64[0] != uint64(small.popularityBig()[0].Int64()) {
		t.Error("64-bit and big popularity disagree")
	}
}

func TestPackageName(t *testing.T) {
	for in, want := range map[string]string{
		"/nix/store/abc-foo-1.0": "foo-1.0-/nix/store/abc",
		"/nix/store/abc-foo":     "foo-/nix/store/abc",
		"nohyphen":               "nohyphen",
	} {
		if got := PackageName(in); got != want {
			t.Errorf("PackageName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Equally popular paths sort by name, then hash — never by hash first.
func TestRankTieBreakGolden(t *testing.T) {
	root := sp("zzzz", "app")
	leaves := []string{sp("0aaa", "zlib-1.3"), sp("9bbb", "bash-5.2"), sp("5ccc", "bash-5.2"), sp("1ddd", "acl-2.3"), sp("2eee", "Xorg")}
	g := graph(t, map[string][]string{root: leaves, leaves[0]: nil, leaves[1]: nil, leaves[2]: nil, leaves[3]: nil, leaves[4]: nil}, nil)
	got := strings.Join(Rank(g.Paths(), g.Popularity()), "\n") + "\n"
	golden(t, "rank_tiebreak.golden", got)
}

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

func TestNewGraphErrors(t *testing.T) {
	a, b := sp("a", "a"), sp("b", "b")
	tests := []struct {
		name  string
		nodes []Node
		want  string
	}{
		{"missing reference", []Node{{Path: a, References: []string{b}}}, "not in it"},
		{"cycle", []Node{{Path: a, References: []string{b}}, {Path: b, References: []string{a}}}, "cycle"},
		{"duplicate", []Node{{Path: a}, {Path: a}}, "twice"},
		{"negative size", []Node{{Path: a, Size: -1}}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGraph(tc.nodes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestMakeTable(t *testing.T) {
	const MB = 1000 * 1000
	app, lib1, lib2, lib3, libc, data := sp("1", "app"), sp("2", "lib1"), sp("3", "lib2"), sp("4", "lib3"), sp("5", "glibc"), sp("6", "data")
	edges := map[string][]string{
		app: {lib1, lib2, lib3, libc}, lib1: {libc}, lib2: {libc}, lib3: {libc}, libc: nil, data: nil,
	}
	sizes := map[string]int64{app: 30 * MB, lib1: 10 * MB, lib2: 20 * MB, lib3: 40 * MB, libc: 30 * MB, data: 100 * MB}
	g := graph(t, edges, sizes)
	roots := []string{app, data}
	kinds := func(p *Plan) string {
		var s []string
		for _, l := range p.Layers {
			var names []string
			for _, q := range l.Paths {
				names = append(names, q[strings.IndexByte(q, '-')+1:])
			}
			s = append(s, string(l.Kind)+":"+strings.Join(names, "+"))
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		name   string
		groups [][]string
		opts   Options
		want   string
		err    string
	}{
		{"fits the budget", nil, Options{MaxLayers: 100, MaxLayerSize: 65 * MB},
			"path:glibc path:lib1 path:lib2 path:lib3 root:app root:data", ""},
		// Budget 4: lib1+lib2 (30 MB) is the smallest pair, then glibc+lib1+lib2 (60 MB).
		{"merge smallest neighbours", nil, Options{MaxLayers: 5, MaxLayerSize: 65 * MB},
			"merged:lib1+lib2+glibc path:lib3 root:app root:data", ""},
		{"merge respects max size", nil, Options{MaxLayers: 5, MaxLayerSize: 35 * MB},
			"", "raise max_layers or max_layer_size"},
		{"roots keep their own layer", nil, Options{MaxLayers: 3, MaxLayerSize: 1000 * MB},
			"", "image contents"},
		{"one store layer left", nil, Options{MaxLayers: 4, MaxLayerSize: 1000 * MB},
			"merged:lib1+lib2+lib3+glibc root:app root:data", ""},
		{"explicit group first", [][]string{{lib3}}, Options{MaxLayers: 100, MaxLayerSize: 65 * MB},
			"group:lib3+glibc path:lib1 path:lib2 root:app root:data", ""},
		{"later group minus placed", [][]string{{lib3}, {lib1}, {libc}}, Options{MaxLayers: 100, MaxLayerSize: 65 * MB},
			"group:lib3+glibc group:lib1 path:lib2 root:app root:data", ""},
		{"groups exhaust the budget", [][]string{{lib1}, {lib2}, {lib3}}, Options{MaxLayers: 4, MaxLayerSize: 65 * MB},
			"", "explicit layer groups"},
		{"max_layers 0", nil, Options{MaxLayers: 0, MaxLayerSize: 65 * MB}, "", "between 2 and 125"},
		{"max_layers 200", nil, Options{MaxLayers: 200, MaxLayerSize: 65 * MB}, "", "between 2 and 125"},
		{"group not in closure", [][]string{{sp("9", "nope")}}, Options{MaxLayers: 10, MaxLayerSize: 65 * MB}, "", "not in the closure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Make(g, roots, tc.groups, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(p); got != tc.want {
				t.Errorf("plan = %s\nwant   %s", got, tc.want)
			}
			checkPlan(t, g, roots, p, tc.opts)
		})
	}
}

func TestMakeSingleBigPathSaysSo(t *testing.T) {
	big1 := sp("1", "big")
	g := graph(t, map[string][]string{big1: nil}, map[string]int64{big1: 300e6})
	p, err := Make(g, nil, nil, Options{MaxLayers: 10, MaxLayerSize: 65e6})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Layers[0].Why, "above max_layer_size 65 MB") {
		t.Errorf("why = %q", p.Layers[0].Why)
	}
}

// When merging the smallest pair first gets stuck, packing in order still
// meets the budget: sizes 40 30 30 40 with at most 70 per layer.
func TestMakeFallbackPacking(t *testing.T) {
	r := sp("0", "root")
	a, b, c, d := sp("1", "a"), sp("2", "b"), sp("3", "c"), sp("4", "d")
	// Popularity order a, b, c, d: a chain d→c→b→a under the root.
	g := graph(t, map[string][]string{r: {d}, d: {c}, c: {b}, b: {a}, a: nil},
		map[string]int64{r: 1, a: 40, b: 30, c: 30, d: 40})
	p, err := Make(g, []string{r}, nil, Options{MaxLayers: 4, MaxLayerSize: 70})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Fallback || len(p.Layers) != 3 {
		t.Fatalf("plan: fallback=%v layers=%d, want fallback with 3 layers", p.Fallback, len(p.Layers))
	}
	checkPlan(t, g, []string{r}, p, Options{MaxLayers: 4, MaxLayerSize: 70})
}

// checkPlan verifies the invariants every plan must have.
func checkPlan(t *testing.T, g *Graph, roots []string, p *Plan, opts Options) {
	t.Helper()
	seen := map[string]int{}
	for i, l := range p.Layers {
		var size int64
		for _, q := range l.Paths {
			if prev, dup := seen[q]; dup {
				t.Fatalf("%s is in layers %d and %d", q, prev, i)
			}
			seen[q] = i
			size += g.Size(q)
		}
		if size != l.Size {
			t.Errorf("layer %d: size %d, paths sum to %d", i, l.Size, size)
		}
		if len(l.Paths) == 0 {
			t.Errorf("layer %d is empty", i)
		}
		if l.Kind != KindGroup && len(l.Paths) > 1 && l.Size > opts.MaxLayerSize {
			t.Errorf("layer %d: %d paths, %d bytes > max %d", i, len(l.Paths), l.Size, opts.MaxLayerSize)
		}
	}
	if len(seen) != g.Len() {
		t.Errorf("%d paths placed, closure has %d", len(seen), g.Len())
	}
	if len(p.Layers)+1 > opts.MaxLayers {
		t.Errorf("%d store layers + top > max_layers %d", len(p.Layers), opts.MaxLayers)
	}
	for _, r := range roots {
		l := p.Layers[seen[r]]
		if l.Kind != KindGroup && len(l.Paths) != 1 {
			t.Errorf("root %s shares layer %d with %v", r, seen[r], l.Paths)
		}
	}
}

// randomClosure makes a random DAG: node i refers only to nodes < i.
func randomClosure(rng *rand.Rand) ([]Node, []string) {
	n := 1 + rng.Intn(250)
	nodes := make([]Node, n)
	referenced := make([]bool, n)
	for i := range nodes {
		nodes[i].Path = sp(fmt.Sprintf("%08x%d", rng.Uint32(), i), fmt.Sprintf("p%d-%d", rng.Intn(20), i))
		switch rng.Intn(10) {
		case 0:
			nodes[i].Size = rng.Int63n(500e6) // some big ones
		default:
			nodes[i].Size = rng.Int63n(20e6)
		}
		if i > 0 {
			for k := rng.Intn(min(i, 6) + 1); k > 0; k-- {
				j := rng.Intn(i)
				nodes[i].References = append(nodes[i].References, nodes[j].Path)
				referenced[j] = true
			}
		}
		if rng.Intn(8) == 0 {
			nodes[i].References = append(nodes[i].References, nodes[i].Path)
		}
	}
	var roots []string
	for i := n - 1; i >= 0 && len(roots) < 1+rng.Intn(4); i-- {
		if !referenced[i] || rng.Intn(30) == 0 {
			roots = append(roots, nodes[i].Path)
		}
	}
	return nodes, roots
}

// Property: over random DAGs, every successful plan places each path in
// exactly one layer, never makes a multi-path layer above max_layer_size,
// never exceeds the budget, keeps roots alone, and is deterministic; a
// failure is ErrInfeasible and only happens when even packing in order
// cannot meet the budget.
func TestMakeProperties(t *testing.T) {
	seed := int64(1)
	if s := os.Getenv("RELENG_PROPERTY_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewSource(seed))
	infeasible := 0
	const runs = 400
	for run := 0; run < runs; run++ {
		nodes, roots := randomClosure(rng)
		g, err := NewGraph(nodes)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{MaxLayers: 2 + rng.Intn(MaxLayers-1), MaxLayerSize: 1 + rng.Int63n(200e6)}
		var groups [][]string
		for k := rng.Intn(3); k > 0; k-- {
			groups = append(groups, []string{nodes[rng.Intn(len(nodes))].Path})
		}
		p, err := Make(g, roots, groups, opts)
		if err != nil {
			if !errors.Is(err, ErrInfeasible) {
				t.Fatalf("run %d (seed %d): unexpected error %v", run, seed, err)
			}
			infeasible++
			continue
		}
		checkPlan(t, g, roots, p, opts)
		again, _ := Make(g, roots, groups, opts)
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("run %d: same input, different plans", run)
		}
	}
	if infeasible == runs {
		t.Fatal("every random case was infeasible; the generator is useless")
	}
	t.Logf("%d of %d random closures were infeasible under their random limits", infeasible, runs)
}

// A closure that differs in one leaf changes only the layer holding it.
func TestMakeStableUnderLeafChange(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	tried := 0
	for run := 0; run < 200; run++ {
		nodes, roots := randomClosure(rng)
		if run%2 == 0 { // make sure there is a leaf root, like a data package
			leafPath := sp(fmt.Sprintf("leaf%d", run), "data-1.0")
			nodes = append(nodes, Node{Path: leafPath, Size: rng.Int63n(30e6)})
			roots = append(roots, leafPath)
		}
		// Replace one leaf root by a new one of another size.
		referenced := map[string]bool{}
		for _, n := range nodes {
			for _, r := range n.References {
				if r != n.Path {
					referenced[r] = true
				}
			}
		}
		leaf := -1
		for i, n := range nodes {
			if len(n.References) == 0 && contains(roots, n.Path) && !referenced[n.Path] {
				leaf = i
			}
		}
		if leaf < 0 {
			continue
		}
		opts := Options{MaxLayers: 2 + rng.Intn(40), MaxLayerSize: 50e6}
		g1, _ := NewGraph(nodes)
		p1, err := Make(g1, roots, nil, opts)
		if err != nil {
			continue
		}
		old := nodes[leaf].Path
		nodes2 := append([]Node(nil), nodes...)
		// A new version of the same package: same name, another hash.
		nodes2[leaf] = Node{Path: "/nix/store/z" + old[len("/nix/store/")+1:], Size: nodes[leaf].Size + 12345}
		roots2 := append([]string(nil), roots...)
		for i := range roots2 {
			if roots2[i] == old {
				roots2[i] = nodes2[leaf].Path
			}
		}
		g2, err := NewGraph(nodes2)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := Make(g2, roots2, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		l1 := layerSet(p1)
		for _, l := range p2.Layers {
			if !l1[strings.Join(l.Paths, " ")] {
				changed++
			}
		}
		if changed != 1 {
			t.Errorf("run %d: %d layers changed, want 1", run, changed)
		}
		tried++
	}
	if tried < 20 {
		t.Fatalf("only %d random closures had a leaf root to change", tried)
	}
}

func layerSet(p *Plan) map[string]bool {
	m := map[string]bool{}
	for _, l := range p.Layers {
		m[strings.Join(l.Paths, " ")] = true
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 65e6: "65 MB", 1500e6: "1.5 GB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
