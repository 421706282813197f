package layering

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxLayers is the most layers an image may have: overlay2 and Docker fail
// past about 125.
const MaxLayers = 125

// Options bound a plan.
type Options struct {
	// MaxLayers is the whole image's layer budget, the top layer (root
	// tree, tmp dirs, Nix database) included: 2 to MaxLayers.
	MaxLayers int
	// MaxLayerSize is the largest a merged layer may grow (NAR sizes);
	// a single path bigger than this is a layer by itself.
	MaxLayerSize int64
}

// Kind says why a layer exists.
type Kind string

// The kinds of store layers.
const (
	KindGroup  Kind = "group"  // an explicit layer group
	KindRoot   Kind = "root"   // one of the image's contents
	KindPath   Kind = "path"   // one path, ranked by popularity
	KindMerged Kind = "merged" // neighbours in popularity order
)

// Layer is one store layer of a plan.
type Layer struct {
	Kind  Kind
	Paths []string // sorted
	Size  int64    // sum of NAR sizes
	Why   string
}

// Plan is the store layers of an image, bottom first; the top layer is not
// part of it.
type Plan struct {
	Layers []Layer
	// Budget is the number of store layers allowed (MaxLayers - 1).
	Budget int
	// Fallback is set when merging smallest pairs first could not reach the
	// budget and the paths were packed in popularity order instead.
	Fallback bool
}

// ErrInfeasible is returned (wrapped) when no plan satisfies the options.
var ErrInfeasible = errors.New("no layering fits the limits")

// Make plans the store layers of the closure g. roots are the image's
// contents (each keeps a layer of its own); groups are explicit layer
// groups, each given by the paths whose closure it holds, in order.
func Make(g *Graph, roots []string, groups [][]string, opts Options) (*Plan, error) {
	if opts.MaxLayers < 2 || opts.MaxLayers > MaxLayers {
		return nil, fmt.Errorf("max_layers = %d: must be between 2 and %d (Docker and overlay2 fail past about %d layers)", opts.MaxLayers, MaxLayers, MaxLayers)
	}
	if opts.MaxLayerSize <= 0 {
		return nil, fmt.Errorf("max_layer_size must be positive, not %d", opts.MaxLayerSize)
	}
	plan := &Plan{Budget: opts.MaxLayers - 1}
	placed := map[string]bool{}

	// 1. Explicit groups, in order.
	for gi, grp := range groups {
		cl, err := g.Closure(grp...)
		if err != nil {
			return nil, fmt.Errorf("layer group %d: %w", gi+1, err)
		}
		var paths []string
		var size int64
		for _, p := range cl {
			if !placed[p] {
				placed[p] = true
				paths = append(paths, p)
				size += g.Size(p)
			}
		}
		if len(paths) == 0 {
			continue // everything already placed by an earlier group
		}
		why := fmt.Sprintf("explicit group %d: closure of %s, minus paths already placed", gi+1, strings.Join(grp, " "))
		if size > opts.MaxLayerSize && len(paths) > 1 {
			why += fmt.Sprintf("; %s, above max_layer_size %s (groups are kept whole: split the group to get smaller layers)", FormatSize(size), FormatSize(opts.MaxLayerSize))
		}
		plan.Layers = append(plan.Layers, Layer{Kind: KindGroup, Paths: paths, Size: size, Why: why})
	}
	budget := plan.Budget - len(plan.Layers)
	if budget < 0 || (budget == 0 && len(placed) < g.Len()) {
		return nil, fmt.Errorf("%w: %d explicit layer groups and the top layer need %d layers, more than max_layers = %d (raise max_layers or merge groups)", ErrInfeasible, len(plan.Layers), len(plan.Layers)+1, opts.MaxLayers)
	}

	// 2. The rest, by popularity.
	isRoot := map[string]bool{}
	for _, r := range roots {
		if !g.Has(r) {
			return nil, fmt.Errorf("image contents %s is not in the closure", r)
		}
		isRoot[r] = true
	}
	var rest []string
	for _, p := range g.Paths() {
		if !placed[p] {
			rest = append(rest, p)
		}
	}
	if len(rest) == 0 {
		return plan, nil
	}
	pop := g.Popularity()
	ranked := Rank(rest, pop)
	segs := make([]segment, len(ranked))
	for i, p := range ranked {
		segs[i] = segment{first: i, last: i, size: g.Size(p), root: isRoot[p] && !placed[p]}
	}

	// 3. Merge neighbours until the budget is met.
	if len(segs) > budget {
		merged, ok := mergeSmallest(segs, budget, opts.MaxLayerSize)
		if !ok {
			packed := packInOrder(segs, opts.MaxLayerSize)
			if len(packed) > budget {
				nroots := 0
				for _, s := range segs {
					if s.root {
						nroots++
					}
				}
				return nil, fmt.Errorf("%w: %d paths (%d of them image contents, which keep a layer each) need at least %d layers of at most %s, but only %d are left after %d explicit groups and the top layer (raise max_layers or max_layer_size)",
					ErrInfeasible, len(ranked), nroots, len(packed), FormatSize(opts.MaxLayerSize), budget, len(plan.Layers))
			}
			merged = packed
			plan.Fallback = true
		}
		segs = merged
	}
	for _, s := range segs {
		paths := append([]string(nil), ranked[s.first:s.last+1]...)
		sort.Strings(paths)
		l := Layer{Paths: paths, Size: s.size}
		switch {
		case s.first != s.last:
			l.Kind = KindMerged
			l.Why = fmt.Sprintf("popularity ranks %d-%d merged (neighbours, %s <= max_layer_size %s)", s.first+1, s.last+1, FormatSize(s.size), FormatSize(opts.MaxLayerSize))
			if plan.Fallback {
				l.Why = fmt.Sprintf("popularity ranks %d-%d packed in order (smallest-pair merging could not meet the budget of %d layers)", s.first+1, s.last+1, budget)
			}
		case s.root:
			l.Kind = KindRoot
			l.Why = fmt.Sprintf("image contents (keeps its own layer), popularity %s", pop[ranked[s.first]])
		default:
			l.Kind = KindPath
			l.Why = fmt.Sprintf("popularity %s, rank %d", pop[ranked[s.first]], s.first+1)
		}
		if s.first == s.last && s.size > opts.MaxLayerSize {
			l.Why += fmt.Sprintf("; a single path of %s, above max_layer_size %s", FormatSize(s.size), FormatSize(opts.MaxLayerSize))
		}
		plan.Layers = append(plan.Layers, l)
	}
	return plan, nil
}

// segment is a run ranked[first..last] that forms one layer.
type segment struct {
	first, last int
	size        int64
	root        bool
}

// mergeSmallest merges the adjacent pair of non-root segments with the
// smallest combined size not above max, the most popular pair on ties,
// until at most budget segments remain. It reports false if it gets stuck.
func mergeSmallest(segs []segment, budget int, max int64) ([]segment, bool) {
	segs = append([]segment(nil), segs...)
	for len(segs) > budget {
		best := -1
		var bestSize int64
		for i := 0; i+1 < len(segs); i++ {
			a, b := segs[i], segs[i+1]
			if a.root || b.root {
				continue
			}
			s := a.size + b.size
			if s > max {
				continue
			}
			if best < 0 || s < bestSize {
				best, bestSize = i, s
			}
		}
		if best < 0 {
			return nil, false
		}
		segs[best] = segment{first: segs[best].first, last: segs[best+1].last, size: bestSize}
		segs = append(segs[:best+1], segs[best+2:]...)
	}
	return segs, true
}

// packInOrder fills layers greedily in popularity order, never across a
// root and never above max: the fewest layers any contiguous split can
// have.
func packInOrder(segs []segment, max int64) []segment {
	var out []segment
	for _, s := range segs {
		if n := len(out); n > 0 && !s.root && !out[n-1].root && out[n-1].size+s.size <= max {
			out[n-1].last = s.last
			out[n-1].size += s.size
			continue
		}
		out = append(out, s)
	}
	return out
}

// FormatSize prints a byte count with a decimal unit, as max_layer_size is
// written ("65 MB").
func FormatSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit {
			return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", f), "0"), ".") + " " + u
		}
	}
	return fmt.Sprintf("%.1f PB", f/unit)
}
