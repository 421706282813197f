package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/plan"
)

func (app *App) cacheCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "cache",
		Short: "Work with Nix binary caches",
		Args:  noArgs,
	}
	c.AddCommand(app.cachePushCommand())
	return c
}

// cachePushOptions are the flags of `releng cache push`.
type cachePushOptions struct {
	To               string
	Stdin            bool
	Jobs             int
	StoreDir         string
	ClosureFile      string
	AllowInsecureKey bool
	Paths            []string
}

func (app *App) cachePushCommand() *cobra.Command {
	var o cachePushOptions
	c := &cobra.Command{
		Use:   "push --to STORE_URI [PATH…|--stdin]",
		Short: "Push store paths and their closure to a binary cache, like nix copy --to",
		Long: `Push the closure of the given store paths to a Nix binary cache that stock
Nix and Lix read: file:///dir?… or s3://bucket?…, with the parameters of
nix copy --to (compression, write-nar-listing, secret-key, region,
endpoint, scheme, profile, …; see docs/cache.md). Unknown parameters are
errors. Paths already in the cache are skipped; a narinfo is written only
after its NAR and its references, so an interrupted push leaves a
consistent cache, and running it again completes it.

Path information comes from nix path-info --json --recursive, or from a
closure JSON file (--closure-file, with --store-dir for a store elsewhere
than /nix/store). S3 credentials come from the standard chain (AWS_*
variables, ~/.aws/credentials, profile= in the URI).

EXIT STATUS
  0  every path is in the cache
  1  the push failed (what was published is consistent; run it again)
  2  usage error: bad flags, store URI or key file`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Paths = args
			return app.runCachePush(cmd.Context(), o)
		},
		Annotations: map[string]string{stopsCleanly: "yes"},
	}
	f := c.Flags()
	f.StringVar(&o.To, "to", "", "the binary cache `STORE_URI` (file:///dir?… or s3://bucket?…)")
	f.BoolVar(&o.Stdin, "stdin", false, "read the store paths from standard input, one a line")
	f.IntVarP(&o.Jobs, "jobs", "j", 4, "`N` NARs serialised and uploaded at once")
	f.StringVar(&o.StoreDir, "store-dir", "", "store directory `DIR` of the paths of --closure-file (default /nix/store)")
	f.StringVar(&o.ClosureFile, "closure-file", "", "read path information from `FILE` (nix path-info --json output) instead of asking Nix")
	f.BoolVar(&o.AllowInsecureKey, "allow-insecure-key", false, "accept secret key files that group or others may read")
	return c
}

func (app *App) runCachePush(ctx context.Context, o cachePushOptions) error {
	if o.To == "" {
		return usageErrorf("cache push: --to STORE_URI is required (e.g. --to file:///srv/cache or --to 's3://bucket?region=…')")
	}
	if o.Jobs < 1 {
		return usageErrorf("cache push: -j must be at least 1")
	}
	if o.Stdin {
		if len(o.Paths) > 0 {
			return usageErrorf("cache push: give store paths as arguments or with --stdin, not both")
		}
		paths, err := readPathLines(app.In)
		if err != nil {
			return fmt.Errorf("cache push: reading store paths from standard input: %w", err)
		}
		o.Paths = paths
	}
	if o.StoreDir != "" && o.ClosureFile == "" {
		return usageErrorf("cache push: --store-dir needs --closure-file (Nix's own store is %s)", "/nix/store")
	}
	if len(o.Paths) == 0 && o.ClosureFile == "" {
		return usageErrorf("cache push: no store paths given (as arguments, with --stdin, or all of a --closure-file)")
	}
	uri, err := binarycache.ParseStoreURI(o.To)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if uri.ReadOnly() {
		return usageErrorf("cache push: %s is an http(s):// cache, which releng only reads; push to the S3 bucket behind it (s3://BUCKET?endpoint=HOST) or to file:///dir", o.To)
	}
	keys, err := uri.LoadKeys(o.AllowInsecureKey)
	if err != nil {
		return usageErrorf("cache push: %v", err)
	}
	for _, w := range uri.Warnings() {
		fmt.Fprintf(app.Err, "releng: warning: %s\n", w)
	}
	infos, err := binarycache.LoadClosure(ctx, binarycache.Source{StoreDir: o.StoreDir, ClosureFile: o.ClosureFile}, o.Paths)
	if err != nil {
		return fmt.Errorf("cache push: %w", err)
	}
	b, err := uri.Open(binarycache.OpenOptions{OnRetry: app.onRetry, Retry: app.run().RetryPolicy()})
	if err != nil {
		return fmt.Errorf("cache push: %w", err)
	}
	if len(keys) == 0 {
		fmt.Fprintf(app.Err, "releng: warning: no secret-key in %s: the narinfos are not signed by releng, and Nix with require-sigs will refuse them\n", o.To)
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		// The heap is mostly frame and part buffers recycled at a steady
		// rate: collecting at 20% growth instead of 100% keeps the
		// resident memory near what is in flight (docs/cache.md).
		defer debug.SetGCPercent(debug.SetGCPercent(20))
	}
	progress := newCacheProgress(app.Err, isTerminal(app.Err))
	sum, err := binarycache.Push(ctx, binarycache.PushOptions{
		URI: uri, Bucket: b, Paths: infos, Keys: keys, Jobs: o.Jobs, OnEvent: progress.Event,
	})
	progress.Done(err != nil)
	if err != nil {
		pushed := 0
		if sum != nil {
			pushed = sum.Pushed
		}
		hint := fmt.Sprintf("%d paths were published before it stopped, and the cache is consistent: run the same command again to finish", pushed)
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("cache push interrupted; %s", hint)
		}
		return fmt.Errorf("cache push to %s: %w\n(%s)", o.To, err, hint)
	}
	if app.JSON {
		return app.printJSON(sum)
	}
	fmt.Fprintf(app.Out, "pushed %d paths, skipped %d already in %s: %s of NAR in, %s out (%d objects), %.1fs\n",
		sum.Pushed, sum.Skipped, sum.To, plan.Size(sum.NarBytes), plan.Size(sum.BytesOut), sum.Objects, sum.Seconds)
	return nil
}

// readPathLines reads one path a line, ignoring blank lines.
func readPathLines(r io.Reader) ([]string, error) {
	data, err := fsutil.ReadAllLimited(r, "standard input", fsutil.MaxPathInfo)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			paths = append(paths, line)
		}
	}
	return paths, nil
}
