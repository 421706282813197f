package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/closure"
	"github.com/releng-project/releng/internal/nixstore"
)

func (app *App) closureCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "closure",
		Short: "Closure size reports and diffs of store paths",
		Args:  noArgs,
	}
	c.AddCommand(app.closureReportCommand(), app.closureDiffCommand())
	return c
}

// closureSourceFlags adds the flags that say where path information comes
// from (as `cache push` has them).
func closureSourceFlags(c *cobra.Command, src *binarycache.Source) {
	c.Flags().StringVar(&src.StoreDir, "store-dir", "", "store directory `DIR` of the paths of --closure-file (default /nix/store)")
	c.Flags().StringVar(&src.ClosureFile, "closure-file", "", "read path information from `FILE` (nix path-info --json output) instead of asking Nix")
}

const closureSourceHelp = `The arguments are store paths in the local store, paths inside them, or
links to them (./result). Path information comes from
nix path-info --json --recursive, or from a closure JSON file
(--closure-file, with --store-dir for a store elsewhere than /nix/store).
A .drv path stands for the derivation itself: its closure is its build
inputs. Sizes are NAR sizes (as nix path-info -S). Works without a
releng.toml; see docs/closure.md.`

func (app *App) closureReportCommand() *cobra.Command {
	var src binarycache.Source
	var top int
	c := &cobra.Command{
		Use:   "report PATH… [--top N]",
		Short: "Closure size and path count, the largest paths, and the paths by package",
		Long: `Report on the closure of the given store paths (together): its total size and
path count, each root's own closure, the N largest paths, and every package
(the paths' names split as Nix's builtins.parseDrvName) with its path
count, size and versions.

` + closureSourceHelp + `

EXIT STATUS
  0  the report was printed
  1  a path is not in the store, or Nix failed
  2  usage error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("closure report: no store paths given (see `%s --help`)", cmd.CommandPath())
			}
			if top < 0 {
				return usageErrorf("closure report: --top must be 0 (every path) or more")
			}
			return app.runClosure(cmd.Context(), "closure report", src, args, func(infos []nixstore.PathInfo, roots []nixstore.StorePath) (output, error) {
				return closure.NewReport(infos, roots, top)
			})
		},
	}
	closureSourceFlags(c, &src)
	c.Flags().IntVar(&top, "top", 10, "list the `N` largest paths (0: every path)")
	return c
}

func (app *App) closureDiffCommand() *cobra.Command {
	var src binarycache.Source
	c := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "What changed from one closure to another, per package",
		Long: `Compare the closure of OLD with that of NEW, per package (the paths' names
split as Nix's builtins.parseDrvName): added, removed, upgraded or
downgraded (by Nix's builtins.compareVersions), other version changes, and
size changes; then the total.

` + closureSourceHelp + `

EXIT STATUS
  0  the diff was printed (whatever changed)
  1  a path is not in the store, or Nix failed
  2  usage error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("closure diff takes two store paths, OLD and NEW; got %q (see `%s --help`)", args, cmd.CommandPath())
			}
			return app.runClosure(cmd.Context(), "closure diff", src, args, func(infos []nixstore.PathInfo, roots []nixstore.StorePath) (output, error) {
				if len(roots) == 1 { // OLD and NEW are the same path
					roots = append(roots, roots[0])
				}
				return closure.NewDiff(infos, roots[0], roots[1])
			})
		},
	}
	closureSourceFlags(c, &src)
	return c
}

// output is a closure report or diff.
type output interface{ WriteText(w io.Writer) error }

// runClosure loads the closure of args and prints what compute makes of it.
func (app *App) runClosure(ctx context.Context, name string, src binarycache.Source, args []string,
	compute func([]nixstore.PathInfo, []nixstore.StorePath) (output, error)) error {
	if src.StoreDir != "" && src.ClosureFile == "" {
		return usageErrorf("%s: --store-dir needs --closure-file (Nix's own store is %s)", name, nixstore.DefaultStoreDir)
	}
	if app.Dir != "" {
		for i, a := range args {
			if !filepath.IsAbs(a) {
				args[i] = filepath.Join(app.Dir, a)
			}
		}
	}
	infos, roots, err := closure.Load(ctx, src, args)
	if errors.Is(err, closure.ErrMixedDerivations) {
		return usageErrorf("%s: %v", name, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	out, err := compute(infos, roots)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if app.JSON {
		return app.printJSON(out)
	}
	return out.WriteText(app.Out)
}
