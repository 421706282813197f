package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image"
	"github.com/releng-project/releng/internal/image/layering"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
)

func (app *App) imageCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "image",
		Short: "Build, inspect and push container images of Nix closures",
		Long: `Container images of the [[images]] of releng.toml, built natively from Nix
closures (no docker, skopeo or nixpkgs image builder): reproducible layers,
an OCI layout and a docker-archive, pushed multi-arch to registries.`,
		Args: noArgs,
	}
	c.AddCommand(app.imageBuildCommand(), app.imagePushCommand(), app.imageLayersCommand())
	return c
}

// selectImages returns the named [[images]] (all when names is empty).
func selectImages(cfg *config.Config, names []string) ([]*config.Image, error) {
	if len(cfg.Images) == 0 {
		return nil, &config.Error{File: cfg.Path, Msg: "no [[images]] in the configuration: add one (name, systems, contents; see SPEC §3.6)"}
	}
	if len(names) == 0 {
		var all []*config.Image
		for i := range cfg.Images {
			all = append(all, &cfg.Images[i])
		}
		return all, nil
	}
	var out []*config.Image
	for _, n := range names {
		im := cfg.Image(n)
		if im == nil {
			var have []string
			for _, x := range cfg.Images {
				have = append(have, x.Name)
			}
			return nil, usageErrorf("no image %q in %s (configured: %s)", n, cfg.Path, strings.Join(have, ", "))
		}
		out = append(out, im)
	}
	return out, nil
}

// imageSystems returns the systems to build im for: its systems, or the
// one given with --system (which must be among them).
func imageSystems(im *config.Image, only string) ([]string, error) {
	systems := image.Systems(im)
	if only == "" {
		return systems, nil
	}
	for _, s := range systems {
		if s == only {
			return []string{s}, nil
		}
	}
	return nil, usageErrorf("image %q is not built for %s (its systems: %s)", im.Name, only, strings.Join(systems, ", "))
}

func (app *App) nix(p *project.Project) *nixbuild.Nix {
	n := &nixbuild.Nix{Dir: p.Root}
	if app.Verbose {
		n.Log = app.Err
	}
	return n
}

func (app *App) progress(s string) { fmt.Fprintf(app.Err, "releng: %s\n", s) }

func (app *App) imageCache() *image.Cache { return &image.Cache{Dir: app.run().Cache()} }

// resolveInputs asks Nix for the closure of every (image, system).
func (app *App) resolveInputs(ctx context.Context, p *project.Project, images []*config.Image, system string) ([]*image.Input, error) {
	var inputs []*image.Input
	for _, im := range images {
		systems, err := imageSystems(im, system)
		if err != nil {
			return nil, err
		}
		for _, sys := range systems {
			app.progress(fmt.Sprintf("resolving image %s for %s", im.Name, sys))
			in, err := image.Resolve(ctx, app.nix(p), im, sys, p.Version.Version, p.Vars())
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, in)
		}
	}
	return inputs, nil
}

func (app *App) imageBuildCommand() *cobra.Command {
	var system string
	c := &cobra.Command{
		Use:   "build [IMAGE…]",
		Short: "Build images into release/images (OCI layout and docker-archive)",
		Long: `Build the [[images]] of releng.toml (all, or those named) for each of their
systems (or only --system): Nix builds the contents, then releng writes
release/images/IMAGE-SYSTEM/, an OCI layout holding the image tagged with
the version, and release/images/IMAGE-SYSTEM.tar.gz, a docker-archive
tagged IMAGE:VERSION (what docker load and skopeo copy docker-archive:
read), from the same blobs. Layers are reproducible byte for byte; a layer
built before (the cache under $RELENG_CACHE_DIR or ~/.cache/releng) is
reused.

EXIT STATUS
  0  built; 1  Nix or the build failed; 2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			images, err := selectImages(p.Config, args)
			if err != nil {
				return err
			}
			inputs, err := app.resolveInputs(cmd.Context(), p, images, system)
			if err != nil {
				return err
			}
			outputs, err := p.Outputs()
			if err != nil {
				return err
			}
			results, err := image.Build(cmd.Context(), inputs, image.BuildOptions{
				Dir: filepath.Join(p.ReleaseDir(), "images"), Cache: app.imageCache(), RelengVersion: app.run().RelengVersion(), Progress: app.progress,
				Outputs: outputs,
			})
			if err != nil {
				return err
			}
			if app.JSON {
				return app.printJSON(results)
			}
			for _, r := range results {
				var size int64
				for _, l := range r.Layers {
					size += l.Size
				}
				fmt.Fprintf(app.Out, "%s %s %s (%d layers, %s)\n  %s\n", r.Name, r.System, r.Manifest.Digest, len(r.Layers), layering.FormatSize(size), r.Layout)
				if r.Archive != "" {
					fmt.Fprintf(app.Out, "  %s\n", r.Archive)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&system, "system", "", "build only for `SYSTEM` (e.g. x86_64-linux)")
	return c
}

type imagePushOptions struct {
	to        string
	tags      []string
	archives  []string
	fromStore bool
	insecure  bool
	system    string
}

func (app *App) imagePushCommand() *cobra.Command {
	var o imagePushOptions
	c := &cobra.Command{
		Use:   "push [NAME] --to REF [--tag T…]",
		Short: "Push an image, every system of it, to a registry or an OCI layout",
		Long: `Push the image NAME (the only [[images]] entry when there is one) to REF:
HOST[:PORT]/REPO of a registry, or oci:DIR. Each system's image manifest is
pushed untagged, then one OCI index with a platform entry per system and
the image labels as annotations is put to every --tag (default: the
version).

Layers come from release/images (releng image build) when it holds this
version, else straight from the store (or always, with --from-store);
blobs the registry has are not sent, blobs another repository of the same
registry has are mounted. With no [[images]] in releng.toml, the
docker-archives Nix built in the version directory
(NAME-VERSION-docker-image-SYSTEM.tar.gz) are pushed with their own layers,
after they are validated; --archive FILE names them explicitly.

Credentials: Docker's config.json (and its credential helpers) and
containers' auth.json, as docker login and skopeo login write them.

EXIT STATUS
  0  pushed; 1  the push failed; 2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.runImagePush(cmd.Context(), args, o)
		},
		Annotations: map[string]string{stopsCleanly: "yes"},
	}
	f := c.Flags()
	f.StringVar(&o.to, "to", "", "destination `REF`: HOST[:PORT]/REPO or oci:DIR")
	f.StringArrayVar(&o.tags, "tag", nil, "tag `T` to put the index to (repeatable; default: the version)")
	f.StringArrayVar(&o.archives, "archive", nil, "push the docker-archive `FILE` (repeatable, one per system)")
	f.BoolVar(&o.fromStore, "from-store", false, "build the layers from the store while pushing, even if release/images has them")
	f.BoolVar(&o.insecure, "insecure", false, "plain HTTP to the registry (always for localhost and 127.0.0.1)")
	f.StringVar(&o.system, "system", "", "push only the image for `SYSTEM`")
	return c
}

func (app *App) runImagePush(ctx context.Context, args []string, o imagePushOptions) error {
	ctx = retry.WithOnRetry(ctx, app.onRetry)
	if o.to == "" {
		return usageErrorf("image push: --to REF is required (HOST[:PORT]/REPO or oci:DIR)")
	}
	if len(args) > 1 {
		return usageErrorf("image push: one image per destination (%s); push them one at a time", strings.Join(args, ", "))
	}
	p, err := app.openProject()
	if err != nil {
		return err
	}
	tags := o.tags
	if len(tags) == 0 {
		tags = []string{p.Version.Version}
	}
	var sources []image.Source
	switch {
	case len(o.archives) > 0:
		if len(args) > 0 {
			return usageErrorf("image push: give an image NAME or --archive files, not both")
		}
		if sources, err = app.archiveSources(o.archives); err != nil {
			return err
		}
	case len(p.Config.Images) == 0:
		dir := filepath.Join(p.ReleaseDir(), "artifacts", p.Config.Name, p.Config.Name+"-"+p.Version.Version)
		files, _ := image.FindArchives(dir)
		if len(files) == 0 {
			return fmt.Errorf("image push: no [[images]] in %s and no docker-archives (*-docker-image-SYSTEM.tar.gz) in %s: run releng build, or pass --archive FILE", p.Config.Path, dir)
		}
		if sources, err = app.archiveSources(files); err != nil {
			return err
		}
	default:
		images, err := selectImages(p.Config, args)
		if err != nil {
			return err
		}
		if len(images) > 1 {
			var names []string
			for _, im := range images {
				names = append(names, im.Name)
			}
			return usageErrorf("image push: %s has several images (%s): name the one to push to %s", p.Config.Path, strings.Join(names, ", "), o.to)
		}
		im := images[0]
		systems, err := imageSystems(im, o.system)
		if err != nil {
			return err
		}
		for _, sys := range systems {
			layout := image.LayoutPath(filepath.Join(p.ReleaseDir(), "images"), im.Name, sys)
			if !o.fromStore {
				if built, err := image.BuiltSources(filepath.Dir(layout), im.Name, []string{sys}, p.Version.Version); err == nil {
					sources = append(sources, built...)
					continue
				}
			}
			app.progress(fmt.Sprintf("resolving image %s for %s (no build of %s in %s: layers come from the store)", im.Name, sys, p.Version.Version, layout))
			in, err := image.Resolve(ctx, app.nix(p), im, sys, p.Version.Version, p.Vars())
			if err != nil {
				return err
			}
			sources = append(sources, image.Source{Input: in})
		}
	}
	res, err := image.Push(ctx, sources, image.PushOptions{
		Dest: o.to, Insecure: o.insecure, Tags: tags, Cache: app.imageCache(), RelengVersion: app.run().RelengVersion(),
		Progress: app.progress, UserAgent: app.run().UserAgent(),
	})
	if err != nil {
		return err
	}
	if app.JSON {
		return app.printJSON(res)
	}
	for _, im := range res.Images {
		fmt.Fprintf(app.Out, "%s %s/%s %s\n", im.System, im.Platform.OS, im.Platform.Architecture, im.Manifest.Digest)
	}
	for _, tag := range res.Tags {
		fmt.Fprintf(app.Out, "%s:%s %s\n", res.Dest, tag, res.Index.Digest)
	}
	fmt.Fprintf(app.Out, "layers: %d present, %d mounted, %d sent (%s)\n", res.Present, res.Mounted, res.Uploaded, layering.FormatSize(res.Stats.BlobBytes))
	return nil
}

// archiveSources validates docker-archives before anything is pushed.
func (app *App) archiveSources(files []string) ([]image.Source, error) {
	sort.Strings(files)
	app.progress("checking docker-archives " + strings.Join(files, ", "))
	srcs, err := image.ArchiveSources(files)
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was pushed", err)
	}
	return srcs, nil
}

func (app *App) imageLayersCommand() *cobra.Command {
	var system, against string
	var insecure bool
	c := &cobra.Command{
		Use:   "layers [NAME] [--system S] [--against REF]",
		Short: "Print an image's layer plan: layers, sizes, paths and why",
		Long: `Print how releng splits the image NAME (the only one, when there is one)
into layers for each system (or --system): explicit groups, the paths
ranked by popularity, merged neighbours, the image contents in layers of
their own, and the top layer. With --against REF (HOST[:PORT]/REPO or
oci:DIR), also which layers REF already has and how many bytes a push would
send; layers never built on this machine are built (and discarded) to learn
their digests.

EXIT STATUS
  0  printed; 1  Nix or the registry failed; 2  usage or configuration error`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("image layers: name one image")
			}
			p, err := app.openProject()
			if err != nil {
				return err
			}
			images, err := selectImages(p.Config, args)
			if err != nil {
				return err
			}
			if len(images) > 1 {
				var names []string
				for _, im := range images {
					names = append(names, im.Name)
				}
				return usageErrorf("image layers: %s has several images (%s): name one", p.Config.Path, strings.Join(names, ", "))
			}
			inputs, err := app.resolveInputs(cmd.Context(), p, images, system)
			if err != nil {
				return err
			}
			var reports []*image.LayersReport
			for _, in := range inputs {
				rep, err := image.Layers(cmd.Context(), in, image.ReportOptions{
					Cache: app.imageCache(), RelengVersion: app.run().RelengVersion(), Against: against,
					Push: image.PushOptions{Insecure: insecure, UserAgent: app.run().UserAgent()},
				})
				if err != nil {
					return err
				}
				reports = append(reports, rep)
			}
			if app.JSON {
				return app.printJSON(reports)
			}
			for _, rep := range reports {
				app.printLayers(rep)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&system, "system", "", "only for `SYSTEM`")
	f.StringVar(&against, "against", "", "compare with `REF` (HOST[:PORT]/REPO or oci:DIR)")
	f.BoolVar(&insecure, "insecure", false, "plain HTTP to the registry (always for localhost and 127.0.0.1)")
	return c
}

func (app *App) printLayers(rep *image.LayersReport) {
	fmt.Fprintf(app.Out, "image %s for %s: %d layers of at most %d, %d store paths, %s of NAR\n",
		rep.Name, rep.System, len(rep.Layers), rep.MaxLayers, rep.Paths, layering.FormatSize(rep.NarSize))
	w := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
	header := "LAYER\tSIZE\tPATHS\tWHY"
	if rep.Against != "" {
		header = "LAYER\tSIZE\tPATHS\tREGISTRY\tWHY"
	}
	fmt.Fprintln(w, header)
	for _, l := range rep.Layers {
		paths := fmt.Sprint(len(l.Paths))
		if l.Kind == image.KindTop {
			paths = "-"
		}
		if rep.Against != "" {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", l.Index, layering.FormatSize(l.Size), paths, l.Registry, l.Why)
		} else {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", l.Index, layering.FormatSize(l.Size), paths, l.Why)
		}
	}
	w.Flush()
	for _, l := range rep.Layers {
		if len(l.Paths) == 0 {
			continue
		}
		fmt.Fprintf(app.Out, "layer %d:\n", l.Index)
		for _, p := range l.Paths {
			fmt.Fprintf(app.Out, "  %s\n", p)
		}
	}
	if rep.Against != "" {
		fmt.Fprintf(app.Out, "%s: a push would send %d of %d layers, %s (plus the config and manifests)\n",
			rep.Against, rep.SendLayers, len(rep.Layers), layering.FormatSize(rep.SendBytes))
	}
}
