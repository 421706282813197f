package nixbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/nixstore"
)

// Outputs realises installables (`nix build --no-link --json`, a no-op
// for what is built already) and returns their output paths, sorted.
// Installables are what `nix build` takes: flake references (.#attr),
// store paths, or symbolic links to store paths.
func (n *Nix) Outputs(ctx context.Context, installables ...string) ([]string, error) {
	if len(installables) == 0 {
		return nil, nil
	}
	for _, i := range installables {
		if strings.HasPrefix(i, "-") {
			return nil, fmt.Errorf("installable %q: must not start with '-'", i)
		}
	}
	args := append(append([]string{}, features...), "build", "--no-link", "--json")
	args = append(args, installables...)
	out, err := n.run(ctx, nil, "nix", args...)
	if err != nil {
		return nil, err
	}
	var built []struct {
		Path    string            `json:"path"`
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil {
		return nil, fmt.Errorf("nix build --json %s: unexpected output: %v", strings.Join(installables, " "), err)
	}
	seen := map[string]bool{}
	var paths []string
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, b := range built {
		add(b.Path)
		for _, o := range b.Outputs {
			add(o)
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("nix build %s produced no output paths", strings.Join(installables, " "))
	}
	sort.Strings(paths)
	return paths, nil
}

// ClosureInfo returns the path information of the closure of paths
// (`nix path-info --json --recursive`), in either JSON shape Nix prints.
func (n *Nix) ClosureInfo(ctx context.Context, paths ...string) ([]nixstore.PathInfo, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	args := append(append([]string{}, features...), "path-info", "--json", "--recursive")
	args = append(args, paths...)
	out, err := n.run(ctx, nil, "nix", args...)
	if err != nil {
		return nil, err
	}
	return nixstore.ParsePathInfo(out, "nix path-info --json --recursive", nixstore.DefaultStoreDir)
}
