package cli

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/closure"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/release"
	"github.com/releng-project/releng/internal/version"
)

func (app *App) closureCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "closure",
		Short: "Closure size reports, diffs and reference chains of store paths and releases",
		Args:  noArgs,
	}
	c.AddCommand(app.closureReportCommand(), app.closureDiffCommand(), app.closureWhyCommand())
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

OLD and NEW are store paths, or VERSION@ENV: the release VERSION as
published to environment ENV of releng.toml, read from its releases
bucket (NAME/NAME-VERSION/manifest.nix) and its cache's narinfos, each
read once; no Nix is needed for those (read-only credentials are enough).

` + closureSourceHelp + `

EXIT STATUS
  0  the diff was printed (whatever changed)
  1  a path is not in the store, a version is not published, Nix failed
  2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("closure diff takes two store paths or VERSION@ENV, OLD and NEW; got %q (see `%s --help`)", args, cmd.CommandPath())
			}
			return app.runClosureDiff(cmd.Context(), src, args)
		},
	}
	closureSourceFlags(c, &src)
	return c
}

// published splits VERSION@ENV; ok is false for anything else (a store
// path or a link has a '/' or no '@').
func published(arg string) (ver, env string, ok bool) {
	if strings.Contains(arg, "/") {
		return "", "", false
	}
	ver, env, ok = strings.Cut(arg, "@")
	return ver, env, ok
}

// runClosureDiff loads both sides, each from the local store or an
// environment, and prints their diff.
func (app *App) runClosureDiff(ctx context.Context, src binarycache.Source, args []string) error {
	const name = "closure diff"
	sets := make([]closure.Set, 2)
	var local []string
	byEnv := map[string][]int{}
	var envs []string
	for i, a := range args {
		ver, env, ok := published(a)
		if !ok {
			local = append(local, a)
			continue
		}
		if _, err := version.Parse(ver); err != nil || env == "" {
			return usageErrorf("%s: %q is neither a store path nor VERSION@ENV (a release version, then the environment's name)", name, a)
		}
		if byEnv[env] == nil {
			envs = append(envs, env)
		}
		byEnv[env] = append(byEnv[env], i)
	}
	if len(local) > 0 {
		infos, _, err := app.loadLocal(ctx, name, src, local)
		if err != nil {
			return err
		}
		storeDir := cmp.Or(src.StoreDir, nixstore.DefaultStoreDir)
		for i, a := range args {
			if _, _, ok := published(a); !ok {
				sp, _ := binarycache.ResolveStorePath(storeDir, app.abs(a))
				sets[i] = closure.Set{Name: sp.String(), Roots: []nixstore.StorePath{sp}, Infos: infos}
			}
		}
	}
	if len(envs) > 0 {
		p, err := app.openProject()
		if err != nil {
			return fmt.Errorf("%s: VERSION@ENV reads the environments of releng.toml: %w", name, err)
		}
		for _, env := range envs {
			t, err := release.OpenTarget(ctx, p, env, release.TargetOptions{NeedCredentials: true, OnRetry: app.onRetry, Retry: app.run().RetryPolicy()})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			var versions []string
			for _, i := range byEnv[env] {
				ver, _, _ := published(args[i])
				versions = append(versions, ver)
			}
			got, err := release.PublishedSets(ctx, p, t, versions...)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for k, i := range byEnv[env] {
				sets[i] = got[k]
			}
		}
	}
	d, err := closure.NewDiff(sets[0], sets[1])
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return app.printClosure(d)
}

func (app *App) closureWhyCommand() *cobra.Command {
	var src binarycache.Source
	var from string
	c := &cobra.Command{
		Use:   "why PATH DEP [--from ENV|STORE_URI]",
		Short: "The shortest reference chain from a path to one of its dependencies",
		Long: `Print the shortest chain of references from PATH to DEP (what brought DEP
into PATH's closure), each path with its NAR size and the size and path
count of its own closure. DEP is a store path, or a name: the nearest path
whose name (after the hash) or package name (builtins.parseDrvName) is
DEP, e.g. perl.

Path information comes from the local store, or with --from from a binary
cache's narinfos (no Nix needed): an environment of releng.toml (its
cache), or a store URI (file://, s3://, http(s)://).

` + closureSourceHelp + `

EXIT STATUS
  0  the chain was printed
  1  DEP is not in PATH's closure, a path is not in the store or cache
  2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("closure why takes a store path and a dependency, PATH and DEP; got %q (see `%s --help`)", args, cmd.CommandPath())
			}
			if from != "" && (src.ClosureFile != "" || src.StoreDir != "") {
				return usageErrorf("closure why: --from and --closure-file/--store-dir are two sources; give one")
			}
			return app.runClosureWhy(cmd.Context(), src, from, args[0], args[1])
		},
	}
	closureSourceFlags(c, &src)
	c.Flags().StringVar(&from, "from", "", "read narinfos from the cache of environment `ENV`, or from a store URI (file://, s3://, http(s)://)")
	return c
}

func (app *App) runClosureWhy(ctx context.Context, src binarycache.Source, from, path, dep string) error {
	const name = "closure why"
	storeDir := cmp.Or(src.StoreDir, nixstore.DefaultStoreDir)
	if strings.Contains(dep, "/") {
		sp, err := binarycache.ResolveStorePath(storeDir, app.abs(dep))
		if err != nil {
			return fmt.Errorf("%s: DEP %w", name, err)
		}
		dep = sp.String()
	}
	var infos []nixstore.PathInfo
	var root nixstore.StorePath
	if from == "" {
		i, roots, err := app.loadLocal(ctx, name, src, []string{path})
		if err != nil {
			return err
		}
		infos, root = i, roots[0]
	} else {
		sp, err := binarycache.ResolveStorePath(storeDir, app.abs(path))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b, err := app.cacheBucket(ctx, from)
		if err != nil {
			return fmt.Errorf("%s: --from %s: %w", name, from, err)
		}
		if infos, err = closure.FromCache(ctx, b, []nixstore.StorePath{sp}, "given as PATH"); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		root = sp
	}
	w, err := closure.NewWhy(infos, root, dep)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return app.printClosure(w)
}

// cacheBucket opens the cache of --from: a store URI, or an environment.
func (app *App) cacheBucket(ctx context.Context, from string) (bucket.Bucket, error) {
	opts := binarycache.OpenOptions{OnRetry: app.onRetry, Retry: app.run().RetryPolicy()}
	if strings.Contains(from, "://") {
		u, err := binarycache.ParseStoreURI(from)
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		return u.Open(opts)
	}
	p, err := app.openProject()
	if err != nil {
		return nil, fmt.Errorf("an environment is read from releng.toml (or give a store URI): %w", err)
	}
	t, err := release.OpenTarget(ctx, p, from, release.TargetOptions{NeedCredentials: true, OnRetry: app.onRetry, Retry: app.run().RetryPolicy()})
	if err != nil {
		return nil, err
	}
	if t.Cache == nil {
		return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environment %s has no cache (environments.%s.cache)", from, from)}
	}
	return t.Cache, nil
}

// output is a closure report or diff.
type output interface{ WriteText(w io.Writer) error }

// runClosure loads the closure of args and prints what compute makes of it.
func (app *App) runClosure(ctx context.Context, name string, src binarycache.Source, args []string,
	compute func([]nixstore.PathInfo, []nixstore.StorePath) (output, error)) error {
	infos, roots, err := app.loadLocal(ctx, name, src, args)
	if err != nil {
		return err
	}
	out, err := compute(infos, roots)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return app.printClosure(out)
}

// abs makes a relative path relative to -C DIR.
func (app *App) abs(arg string) string {
	if app.Dir != "" && !filepath.IsAbs(arg) {
		return filepath.Join(app.Dir, arg)
	}
	return arg
}

// loadLocal loads the closure of args from the local store (or the
// closure file).
func (app *App) loadLocal(ctx context.Context, name string, src binarycache.Source, args []string) ([]nixstore.PathInfo, []nixstore.StorePath, error) {
	if src.StoreDir != "" && src.ClosureFile == "" {
		return nil, nil, usageErrorf("%s: --store-dir needs --closure-file (Nix's own store is %s)", name, nixstore.DefaultStoreDir)
	}
	abs := make([]string, len(args))
	for i, a := range args {
		abs[i] = app.abs(a)
	}
	infos, roots, err := closure.Load(ctx, src, abs)
	if errors.Is(err, closure.ErrMixedDerivations) {
		return nil, nil, usageErrorf("%s: %v", name, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return infos, roots, nil
}

// printClosure prints out as JSON or as tables, through a buffer (a
// table is many small writes).
func (app *App) printClosure(out output) error {
	if app.JSON {
		return app.printJSON(out)
	}
	w := bufio.NewWriterSize(app.Out, 64<<10)
	return cmp.Or(out.WriteText(w), w.Flush())
}
