package closure

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/releng-project/releng/internal/nixstore"
)

// Link is one path of a reference chain.
type Link struct {
	Path    string `json:"path"`
	NarSize uint64 `json:"nar_size"`
	// ClosureSize and Paths are those of the path's own closure.
	ClosureSize uint64 `json:"closure_size"`
	Paths       int    `json:"paths"`
}

// Why is the shortest reference chain from a path to one in its closure.
type Why struct {
	From string `json:"from"`
	// Dep is what was asked for: a store path, or a name.
	Dep string `json:"dep"`
	// Chain starts at From and ends at the dependency; each path refers
	// to the next.
	Chain []Link `json:"chain"`
}

// ErrNotInClosure is NewWhy's error when nothing in the closure matches.
var ErrNotInClosure = errors.New("not in the closure")

// NewWhy finds the shortest reference chain (breadth first, references in
// store path order, so the same closure gives the same chain) from root
// to a path of its closure that dep matches: the path itself when dep is
// a store path, else the nearest path whose name (after the hash) or
// package name (SplitName) is dep. infos must hold root's closure.
func NewWhy(infos []nixstore.PathInfo, root nixstore.StorePath, dep string) (*Why, error) {
	g, err := newGraph(infos, root)
	if err != nil {
		return nil, err
	}
	match := func(i int) bool {
		p := g.infos[i].Path
		if p.String() == dep || p.Name == dep {
			return true
		}
		pkg, _, _ := SplitName(p.Name)
		return pkg == dep
	}
	start := g.index[root.String()]
	parent := make([]int, len(infos))
	for i := range parent {
		parent[i] = -1
	}
	parent[start] = start
	queue := []int{start}
	found := -1
	for len(queue) > 0 && found < 0 {
		i := queue[0]
		queue = queue[1:]
		if match(i) {
			found = i
			break
		}
		for _, r := range g.refs[i] {
			if parent[r] < 0 {
				parent[r] = i
				queue = append(queue, r)
			}
		}
	}
	if found < 0 {
		return nil, fmt.Errorf("%s is %w of %s (%d paths)", dep, ErrNotInClosure, root, len(g.closure(start)))
	}
	var chain []int
	for i := found; ; i = parent[i] {
		chain = append([]int{i}, chain...)
		if i == start {
			break
		}
	}
	w := &Why{From: root.String(), Dep: dep}
	for _, i := range chain {
		c := g.closure(i)
		l := Link{Path: g.infos[i].Path.String(), NarSize: g.infos[i].NarSize, Paths: len(c)}
		for _, j := range c {
			l.ClosureSize += g.infos[j].NarSize
		}
		w.Chain = append(w.Chain, l)
	}
	return w, nil
}

// graph is path information indexed for walks.
type graph struct {
	infos []nixstore.PathInfo
	index map[string]int
	refs  [][]int // without self-references
}

// newGraph indexes infos, which must hold the closure of root.
func newGraph(infos []nixstore.PathInfo, root nixstore.StorePath) (*graph, error) {
	g := &graph{infos: infos, index: make(map[string]int, len(infos)), refs: make([][]int, len(infos))}
	for i, pi := range infos {
		g.index[pi.Path.String()] = i
	}
	if _, ok := g.index[root.String()]; !ok {
		return nil, fmt.Errorf("%s is not in the path information", root)
	}
	for i, pi := range infos {
		for _, r := range pi.References {
			j, ok := g.index[r.String()]
			if !ok {
				return nil, fmt.Errorf("%s refers to %s, which is not in the path information", pi.Path, r)
			}
			if j != i {
				g.refs[i] = append(g.refs[i], j)
			}
		}
	}
	return g, nil
}

// closure returns the indexes of the closure of i.
func (g *graph) closure(i int) []int {
	seen := make([]bool, len(g.infos))
	seen[i] = true
	out := []int{i}
	for k := 0; k < len(out); k++ {
		for _, r := range g.refs[out[k]] {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// WriteText writes the chain as a table, root first.
func (w *Why) WriteText(out io.Writer) error {
	refs := "references"
	if len(w.Chain) == 2 {
		refs = "reference"
	}
	fmt.Fprintf(out, "%s depends on %s through %d %s:\n\n", w.From, w.Chain[len(w.Chain)-1].Path, len(w.Chain)-1, refs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLOSURE SIZE\tPATHS\tNAR SIZE\tPATH")
	for i, l := range w.Chain {
		arrow := ""
		if i > 0 {
			arrow = "→ "
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s%s\n", size(l.ClosureSize), l.Paths, size(l.NarSize), arrow, l.Path)
	}
	return tw.Flush()
}
