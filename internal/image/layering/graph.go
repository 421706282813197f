// Package layering decides which store paths of a closure go into which
// layer of a container image (SPEC §8.2).
//
// Explicit groups come first, then the remaining paths ranked by popularity
// exactly as nixpkgs' closure-graph.py ranks them. When the paths do not fit
// the layer budget, neighbours in popularity order are merged, smallest
// combined size first, without exceeding the maximum layer size; the image's
// own contents (its roots) always keep a layer of their own, so that a new
// release re-sends the layers of what changed and nothing else. The package
// is pure: it sees only paths, sizes and references.
package layering

import (
	"fmt"
	"math/big"
	"math/bits"
	"sort"
	"strings"
)

// Node is one store path of a closure.
type Node struct {
	Path string // absolute store path, e.g. /nix/store/HASH-name
	Size int64  // NAR size in bytes
	// References are the store paths this one refers to; a self-reference
	// is allowed and ignored.
	References []string
}

// Graph is a closure: every reference of every node is a node.
type Graph struct {
	nodes []Node         // sorted by path
	index map[string]int // path → position in nodes
	refs  [][]int        // references without self-references, sorted
	topo  []int          // every node after all the nodes it references
}

// NewGraph checks that nodes form a closure without cycles and indexes it.
func NewGraph(nodes []Node) (*Graph, error) {
	g := &Graph{nodes: append([]Node(nil), nodes...), index: map[string]int{}}
	sort.Slice(g.nodes, func(i, j int) bool { return g.nodes[i].Path < g.nodes[j].Path })
	for i, n := range g.nodes {
		if _, dup := g.index[n.Path]; dup {
			return nil, fmt.Errorf("closure lists %s twice", n.Path)
		}
		if n.Size < 0 {
			return nil, fmt.Errorf("closure: %s has a negative size", n.Path)
		}
		g.index[n.Path] = i
	}
	g.refs = make([][]int, len(g.nodes))
	for i, n := range g.nodes {
		seen := map[int]bool{}
		for _, r := range n.References {
			j, ok := g.index[r]
			if !ok {
				return nil, fmt.Errorf("closure is incomplete: %s refers to %s, which is not in it", n.Path, r)
			}
			if j != i && !seen[j] {
				seen[j] = true
				g.refs[i] = append(g.refs[i], j)
			}
		}
		sort.Ints(g.refs[i])
	}
	// Topological order (references first), iteratively, detecting cycles.
	state := make([]uint8, len(g.nodes)) // 0 new, 1 on stack, 2 done
	type frame struct{ n, next int }
	for start := range g.nodes {
		if state[start] != 0 {
			continue
		}
		stack := []frame{{start, 0}}
		state[start] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next < len(g.refs[f.n]) {
				c := g.refs[f.n][f.next]
				f.next++
				switch state[c] {
				case 0:
					state[c] = 1
					stack = append(stack, frame{c, 0})
				case 1:
					return nil, fmt.Errorf("closure has a reference cycle through %s and %s; Nix never produces one, so the path information is corrupt", g.nodes[f.n].Path, g.nodes[c].Path)
				}
				continue
			}
			state[f.n] = 2
			g.topo = append(g.topo, f.n)
			stack = stack[:len(stack)-1]
		}
	}
	return g, nil
}

// Len is the number of paths.
func (g *Graph) Len() int { return len(g.nodes) }

// Has reports whether path is in the closure.
func (g *Graph) Has(path string) bool { _, ok := g.index[path]; return ok }

// Size returns the NAR size of path (0 if it is not in the closure).
func (g *Graph) Size(path string) int64 {
	if i, ok := g.index[path]; ok {
		return g.nodes[i].Size
	}
	return 0
}

// Paths returns every path, sorted.
func (g *Graph) Paths() []string {
	out := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		out[i] = n.Path
	}
	return out
}

// Closure returns the paths reachable from roots (roots included), sorted.
func (g *Graph) Closure(roots ...string) ([]string, error) {
	seen := make([]bool, len(g.nodes))
	var stack []int
	for _, r := range roots {
		i, ok := g.index[r]
		if !ok {
			return nil, fmt.Errorf("%s is not in the closure", r)
		}
		if !seen[i] {
			seen[i] = true
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range g.refs[n] {
			if !seen[c] {
				seen[c] = true
				stack = append(stack, c)
			}
		}
	}
	var out []string
	for i, s := range seen {
		if s {
			out = append(out, g.nodes[i].Path)
		}
	}
	return out, nil
}

// Popularity returns the popularity of every path as closure-graph.py
// computes it: self-references are dropped; the roots are the paths nothing
// references; H(X,X) = 1 and H(n,X) = 1 + Σ H(c,X) over the references c of
// n that reach X; pop(X) = Σ H(r,X) over the roots r that reach X.
// Values grow with the number of reference chains and can exceed 64 bits,
// hence big integers.
func (g *Graph) Popularity() map[string]*big.Int {
	pops, ok := g.popularity64()
	out := make(map[string]*big.Int, len(g.nodes))
	if ok {
		for i, p := range pops {
			out[g.nodes[i].Path] = new(big.Int).SetUint64(p)
		}
		return out
	}
	for i, p := range g.popularityBig() {
		out[g.nodes[i].Path] = p
	}
	return out
}

func (g *Graph) roots() []int {
	referenced := make([]bool, len(g.nodes))
	for _, rs := range g.refs {
		for _, c := range rs {
			referenced[c] = true
		}
	}
	var roots []int
	for i, r := range referenced {
		if !r {
			roots = append(roots, i)
		}
	}
	return roots
}

// popularity64 computes with uint64 and reports false on overflow.
func (g *Graph) popularity64() ([]uint64, bool) {
	n := len(g.nodes)
	roots := g.roots()
	pops := make([]uint64, n)
	h := make([]uint64, n)
	for x := 0; x < n; x++ {
		// h[v] = H(v,x) if v reaches x, else 0; references come first in topo.
		for _, v := range g.topo {
			if v == x {
				h[v] = 1
				continue
			}
			var s uint64
			for _, c := range g.refs[v] {
				var carry uint64
				s, carry = bits.Add64(s, h[c], 0)
				if carry != 0 {
					return nil, false
				}
			}
			if s > 0 {
				if s == ^uint64(0) {
					return nil, false
				}
				s++
			}
			h[v] = s
		}
		var p uint64
		for _, r := range roots {
			var carry uint64
			p, carry = bits.Add64(p, h[r], 0)
			if carry != 0 {
				return nil, false
			}
		}
		pops[x] = p
	}
	return pops, true
}

func (g *Graph) popularityBig() []*big.Int {
	n := len(g.nodes)
	roots := g.roots()
	pops := make([]*big.Int, n)
	h := make([]*big.Int, n)
	for i := range h {
		h[i] = new(big.Int)
	}
	one := big.NewInt(1)
	for x := 0; x < n; x++ {
		for _, v := range g.topo {
			hv := h[v]
			if v == x {
				hv.SetInt64(1)
				continue
			}
			hv.SetInt64(0)
			for _, c := range g.refs[v] {
				hv.Add(hv, h[c])
			}
			if hv.Sign() > 0 {
				hv.Add(hv, one)
			}
		}
		p := new(big.Int)
		for _, r := range roots {
			p.Add(p, h[r])
		}
		pops[x] = p
	}
	return pops
}

// PackageName is closure-graph.py's tie-break key: the path with its first
// "-"-separated part (the store directory and hash) moved to the end,
// "NAME-/nix/store/HASH", so that equally popular paths sort by name.
func PackageName(path string) string {
	i := strings.IndexByte(path, '-')
	if i < 0 {
		return path
	}
	return path[i+1:] + "-" + path[:i]
}

// Rank orders paths by popularity, highest first, ties broken by
// PackageName in increasing order — the order closure-graph.py produces.
// Every path must be in the graph.
func Rank(paths []string, pop map[string]*big.Int) []string {
	out := append([]string(nil), paths...)
	sort.SliceStable(out, func(i, j int) bool {
		if c := pop[out[i]].Cmp(pop[out[j]]); c != 0 {
			return c > 0
		}
		return PackageName(out[i]) < PackageName(out[j])
	})
	return out
}
