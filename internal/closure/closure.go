// Package closure reports on the closures of store paths (SPEC §11): their
// total size and path count, the largest paths, the paths grouped by
// package, and what changed from one closure to another.
//
// A package is the name part of a store path split as Nix's
// builtins.parseDrvName does (version.ParseDrvName), after dropping a
// ".drv" suffix and an output name ("gcc-12.2.0-lib" is gcc 12.2.0, output
// lib; see SplitName). Versions order as builtins.compareVersions
// (version.CompareNix). Sizes are NAR sizes, as Nix's closureSize.
//
// Path information comes from binarycache.LoadClosure: the local store's
// database (nixdb), `nix path-info --json --recursive`, or a closure JSON
// file.
package closure

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/version"
)

// ErrMixedDerivations is Load's error for .drv and other paths together.
var ErrMixedDerivations = errors.New("give either derivations (.drv) or other store paths, not both (a .drv's closure is its build inputs, not its outputs')")

// Load returns the path information of the union of the closures of args
// (store paths, paths inside them, or links to them such as ./result) and
// the store paths args stand for, duplicates dropped. .drv paths stand for
// themselves (their closure is derivations and sources), so args are
// either all .drv paths or none.
func Load(ctx context.Context, src binarycache.Source, args []string) ([]nixstore.PathInfo, []nixstore.StorePath, error) {
	storeDir := cmp.Or(src.StoreDir, nixstore.DefaultStoreDir)
	var roots []nixstore.StorePath
	var paths []string
	drvs := 0
	for _, a := range args {
		sp, err := binarycache.ResolveStorePath(storeDir, a)
		if err != nil {
			return nil, nil, err
		}
		if slices.Contains(roots, sp) {
			continue
		}
		roots = append(roots, sp)
		paths = append(paths, sp.String())
		if strings.HasSuffix(sp.Name, ".drv") {
			drvs++
		}
	}
	if drvs > 0 && drvs < len(roots) {
		return nil, nil, ErrMixedDerivations
	}
	src.Nix.Derivation = drvs > 0
	infos, err := binarycache.LoadClosure(ctx, src, paths)
	if err != nil {
		return nil, nil, err
	}
	return infos, roots, nil
}

// Path is one store path of a closure.
type Path struct {
	Path    string `json:"path"`
	Package string `json:"package"`
	Version string `json:"version"`
	Output  string `json:"output,omitempty"`
	NarSize uint64 `json:"nar_size"`
}

// Package is the paths of a closure that have the same package name.
type Package struct {
	Name    string `json:"name"`
	Paths   int    `json:"paths"`
	NarSize uint64 `json:"nar_size"`
	// Versions are the distinct versions, oldest first; "" is a path
	// without a version.
	Versions []string `json:"versions"`
}

// Root is a store path and the size of its own closure.
type Root struct {
	Path        string `json:"path"`
	Paths       int    `json:"paths"`
	ClosureSize uint64 `json:"closure_size"`
}

// Report describes the union of the closures of some roots.
type Report struct {
	Roots       []Root `json:"roots"`
	Paths       int    `json:"paths"`
	ClosureSize uint64 `json:"closure_size"`
	// Largest are the largest paths, largest first.
	Largest []Path `json:"largest"`
	// Packages are every package, largest first.
	Packages []Package `json:"packages"`
}

// SplitName splits the name part of a store path into package name,
// version and output name. A ".drv" suffix is dropped. A last
// dash-separated component that is an output name (lower-case letters,
// or lib32/lib64, as `nix store diff-closures` has it) is split off when
// what precedes it has a version, so "gcc-12.2.0-lib" is gcc, 12.2.0, lib
// while "hello-wrapper" stays the package "hello-wrapper". The rest is
// version.ParseDrvName.
func SplitName(name string) (pkg, ver, output string) {
	name = strings.TrimSuffix(name, ".drv")
	if i := strings.LastIndexByte(name, '-'); i > 0 && isOutputName(name[i+1:]) {
		if p, v := version.ParseDrvName(name[:i]); v != "" {
			return p, v, name[i+1:]
		}
	}
	pkg, ver = version.ParseDrvName(name)
	return pkg, ver, ""
}

func isOutputName(s string) bool {
	if s == "lib32" || s == "lib64" {
		return true
	}
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) < 0
}

// NewReport reports on the union of the closures of roots, which infos
// must hold. top limits Largest (0: every path).
func NewReport(infos []nixstore.PathInfo, roots []nixstore.StorePath, top int) (*Report, error) {
	r := &Report{}
	for _, root := range roots {
		c, err := binarycache.Closure(infos, []nixstore.StorePath{root}, "the path information")
		if err != nil {
			return nil, err
		}
		r.Roots = append(r.Roots, Root{Path: root.String(), Paths: len(c), ClosureSize: narSize(c)})
	}
	union, err := binarycache.Closure(infos, roots, "the path information")
	if err != nil {
		return nil, err
	}
	r.Paths, r.ClosureSize = len(union), narSize(union)
	paths := splitPaths(union)
	slices.SortFunc(paths, func(a, b Path) int {
		return cmp.Or(cmp.Compare(b.NarSize, a.NarSize), strings.Compare(a.Package, b.Package),
			strings.Compare(a.Version, b.Version), strings.Compare(a.Output, b.Output), strings.Compare(a.Path, b.Path))
	})
	if top > 0 && top < len(paths) {
		paths = paths[:top]
	}
	r.Largest = paths
	for _, p := range group(union) {
		r.Packages = append(r.Packages, *p)
	}
	slices.SortFunc(r.Packages, func(a, b Package) int {
		return cmp.Or(cmp.Compare(b.NarSize, a.NarSize), strings.Compare(a.Name, b.Name))
	})
	return r, nil
}

// Side is one of the two closures of a Diff.
type Side struct {
	// Path names the closure: its store path, or VERSION@ENV.
	Path string `json:"path"`
	// Roots are its store paths (one, or those of a manifest.nix).
	Roots       []string `json:"roots"`
	Paths       int      `json:"paths"`
	ClosureSize uint64   `json:"closure_size"`
}

// Change is how one package differs between two closures.
type Change struct {
	Package string `json:"package"`
	// Kind is "added", "removed", "upgraded" or "downgraded" (the newest
	// version is newer or older by builtins.compareVersions), "changed"
	// (the versions differ, the newest compares equal) or "size" (same
	// versions, other contents).
	Kind        string   `json:"change"`
	OldVersions []string `json:"old_versions"`
	NewVersions []string `json:"new_versions"`
	OldPaths    int      `json:"old_paths"`
	NewPaths    int      `json:"new_paths"`
	OldSize     uint64   `json:"old_size"`
	NewSize     uint64   `json:"new_size"`
	Delta       int64    `json:"delta"`
}

// Diff is what changed from the closure of one store path to another's.
type Diff struct {
	Old   Side  `json:"old"`
	New   Side  `json:"new"`
	Delta int64 `json:"delta"`
	// Changes are the packages that changed, by name.
	Changes []Change `json:"changes"`
	// Unchanged counts the packages with the same versions and size.
	Unchanged int `json:"unchanged"`
}

// NewDiff compares the closure of old with that of new.
func NewDiff(old, new Set) (*Diff, error) {
	var sides [2][]nixstore.PathInfo
	d := &Diff{}
	for i, set := range []Set{old, new} {
		c, err := set.closure()
		if err != nil {
			return nil, err
		}
		sides[i] = c
		side := Side{Path: set.Name, Paths: len(c), ClosureSize: narSize(c)}
		for _, r := range set.Roots {
			side.Roots = append(side.Roots, r.String())
		}
		if i == 0 {
			d.Old = side
		} else {
			d.New = side
		}
	}
	d.Delta = int64(d.New.ClosureSize) - int64(d.Old.ClosureSize)
	d.Changes = []Change{}
	before, after := group(sides[0]), group(sides[1])
	var names []string
	for n := range before {
		names = append(names, n)
	}
	for n := range after {
		if before[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		b, a := cmp.Or(before[n], &Package{Versions: []string{}}), cmp.Or(after[n], &Package{Versions: []string{}})
		c := Change{
			Package: n, OldVersions: b.Versions, NewVersions: a.Versions,
			OldPaths: b.Paths, NewPaths: a.Paths, OldSize: b.NarSize, NewSize: a.NarSize,
			Delta: int64(a.NarSize) - int64(b.NarSize),
		}
		switch {
		case b.Paths == 0:
			c.Kind = "added"
		case a.Paths == 0:
			c.Kind = "removed"
		case !slices.Equal(b.Versions, a.Versions):
			c.Kind = [...]string{"downgraded", "changed", "upgraded"}[1+version.CompareNix(a.Versions[len(a.Versions)-1], b.Versions[len(b.Versions)-1])]
		case c.Delta != 0 || a.Paths != b.Paths:
			c.Kind = "size"
		default:
			d.Unchanged++
			continue
		}
		d.Changes = append(d.Changes, c)
	}
	return d, nil
}

func narSize(infos []nixstore.PathInfo) uint64 {
	var n uint64
	for _, pi := range infos {
		n += pi.NarSize
	}
	return n
}

func splitPaths(infos []nixstore.PathInfo) []Path {
	out := make([]Path, len(infos))
	for i, pi := range infos {
		pkg, ver, output := SplitName(pi.Path.Name)
		out[i] = Path{Path: pi.Path.String(), Package: pkg, Version: ver, Output: output, NarSize: pi.NarSize}
	}
	return out
}

// group groups paths by package name; versions are sorted oldest first.
func group(infos []nixstore.PathInfo) map[string]*Package {
	pkgs := map[string]*Package{}
	for _, p := range splitPaths(infos) {
		g := pkgs[p.Package]
		if g == nil {
			g = &Package{Name: p.Package}
			pkgs[p.Package] = g
		}
		g.Paths++
		g.NarSize += p.NarSize
		if !slices.Contains(g.Versions, p.Version) {
			g.Versions = append(g.Versions, p.Version)
		}
	}
	for _, g := range pkgs {
		slices.SortFunc(g.Versions, func(a, b string) int { return cmp.Or(version.CompareNix(a, b), strings.Compare(a, b)) })
	}
	return pkgs
}
