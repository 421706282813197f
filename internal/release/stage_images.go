package release

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
)

// imagesStage pushes the images to every image target of the environment
// (SPEC §10.2 step 2): each system's manifest, then one index per tag.
type imagesStage struct{}

func (imagesStage) Name() string { return "images" }

func imagesSkip(r *run) string {
	if len(r.t.Env.Images) == 0 {
		return "no image targets configured"
	}
	if len(r.rec.Images) == 0 && len(archivesOf(r.rec)) == 0 {
		return "no images were built"
	}
	return ""
}

// imagePush is one push of one image to one target.
type imagePush struct {
	Image   string
	Dest    string
	Tags    []string
	Sources func() ([]image.Source, error)
	// Manifests are the per-system manifest digests the index must name.
	Manifests map[string]string
	Insecure  bool
	// from is the push of the source environment promote copies from.
	from *imagePush
}

// archivesOf lists the docker-archives in the version directory that releng
// did not build itself (Nix built them: §8.1).
func archivesOf(rec *artifacts.Record) []string {
	native := map[string]bool{}
	for _, im := range rec.Images {
		native[im.Archive] = true
	}
	var out []string
	for _, f := range rec.Files {
		if strings.HasPrefix(f.Path, rec.VersionDir+"/") && strings.Contains(f.Path, "-docker-image-") && strings.HasSuffix(f.Path, ".tar.gz") && !native[f.Path] {
			out = append(out, f.Path)
		}
	}
	return out
}

// imagePushes plans the pushes of an environment: the tags are expanded,
// with latest added for a release that is official, not a pre-release and
// not on a maintenance branch.
func imagePushes(p *project.Project, env *config.Environment, rec *artifacts.Record, latest bool) ([]imagePush, error) {
	vars := p.Vars()
	vars["env"] = env.Name
	byName := map[string][]artifacts.Image{}
	for _, im := range rec.Images {
		byName[im.Name] = append(byName[im.Name], im)
	}
	var pushes []imagePush
	for i, t := range env.Images {
		var tags []string
		for _, tt := range t.Tags {
			tag, err := config.Expand(tt, vars)
			if err != nil {
				return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s.images[%d].tags: %v", env.Name, i, err)}
			}
			tags = append(tags, tag)
		}
		if latest {
			tags = append(tags, "latest")
		}
		d, err := registry.ParseDest(t.Repository, p.Root)
		if err != nil {
			return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s.images[%d].repository: %v", env.Name, i, err)}
		}
		dest := d.String()
		names := t.Images
		if len(names) == 0 {
			for n := range byName {
				names = append(names, n)
			}
			sort.Strings(names)
		}
		if len(rec.Images) == 0 {
			// Images Nix built (§8.1): the docker-archives of the version directory.
			files := archivesOf(rec)
			abs := make([]string, len(files))
			for k, f := range files {
				abs[k] = filepath.Join(p.ReleaseDir(), f)
			}
			pushes = append(pushes, imagePush{Image: "docker-archives", Dest: dest, Tags: tags, Insecure: t.Insecure,
				Sources: func() ([]image.Source, error) { return image.ArchiveSources(abs) }})
			continue
		}
		for _, n := range names {
			ims, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("environments.%s.images[%d] names image %q, which build did not build", env.Name, i, n)
			}
			var systems []string
			manifests := map[string]string{}
			for _, im := range ims {
				systems = append(systems, im.System)
				manifests[im.System] = im.Manifest
			}
			sort.Strings(systems)
			dir, version, n := filepath.Join(p.ReleaseDir(), "images"), rec.Version, n
			pushes = append(pushes, imagePush{Image: n, Dest: dest, Tags: tags, Insecure: t.Insecure, Manifests: manifests,
				Sources: func() ([]image.Source, error) { return image.BuiltSources(dir, n, systems, version) }})
		}
	}
	return pushes, nil
}

// imageState is what the images stage needs to run its plan.
type imageState struct {
	pushes []imagePush
}

func (ip imagePush) options(r *run) image.PushOptions {
	return image.PushOptions{
		Dest: ip.Dest, Insecure: ip.Insecure, Tags: ip.Tags,
		Cache: &image.Cache{Dir: r.rc.Cache()}, RelengVersion: r.rc.RelengVersion(), UserAgent: r.rc.UserAgent(), Jobs: r.rc.JobsOr(0),
		Progress: func(line string) { r.rc.Infof("images", "%s", line) },
	}
}

// Plan asks every image target which blobs, manifests and tags it holds.
func (imagesStage) Plan(ctx context.Context, r *run) (*plan.Plan, error) {
	if why := imagesSkip(r); why != "" {
		return &plan.Plan{Skipped: why}, nil
	}
	pushes, err := imagePushes(r.p, r.t.Env, r.rec, r.stable)
	if err != nil {
		return nil, err
	}
	if r.yanked != nil && !r.opts.Unyank {
		// The tags the yank moved to another release stay there.
		for i := range pushes {
			pushes[i].Tags = slices.DeleteFunc(pushes[i].Tags, func(tag string) bool {
				return slices.ContainsFunc(r.yanked.Moved, func(m Move) bool { return m.What == "tag" && m.Where == pushes[i].Dest+":"+tag })
			})
		}
	}
	if r.from != nil {
		if err := r.publishedSources(ctx, pushes); err != nil {
			return nil, err
		}
	}
	pl := &plan.Plan{State: &imageState{pushes: pushes}}
	var dests []string
	for _, ip := range pushes {
		sources, err := ip.Sources()
		if err != nil {
			return nil, err
		}
		objs, err := image.PlanPush(ctx, sources, ip.options(r))
		if err != nil {
			return nil, fmt.Errorf("plan the push of %s to %s: %w", ip.Image, ip.Dest, err)
		}
		pl.Objects = append(pl.Objects, objs...)
		dests = append(dests, ip.Dest)
	}
	pl.Dest = strings.Join(dests, ", ")
	return pl, r.planImageSignatures(ctx, pl, pl.State.(*imageState))
}

// Run pushes every image to every target: blobs and manifests the target
// lacks, then the index to each tag.
func (imagesStage) Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error) {
	st := pl.State.(*imageState)
	pub := Published{Objects: len(pl.Objects)}
	var jerr error
	for _, ip := range st.pushes {
		sources, err := ip.Sources()
		if err != nil {
			return pub, err
		}
		opts := ip.options(r)
		opts.Sent = func(o plan.Object) {
			pub.Sent++
			pub.Bytes += max(o.Size, 0)
			r.rc.Emit(runctx.Event{Kind: runctx.Object, Stage: "images", Object: o.Dest + " " + o.Kind + " " + o.Key, Bytes: o.Size})
			if err := r.j.Append(journal.Entry{Kind: "object", Step: "images", Key: o.Dest + "@" + o.Key, Size: o.Size, SHA256: o.Digest}); err != nil && jerr == nil {
				jerr = err
			}
		}
		if _, err := image.Push(ctx, sources, opts); err != nil {
			return pub, fmt.Errorf("push image %s to %s: %w", ip.Image, ip.Dest, err)
		}
	}
	if jerr != nil {
		return pub, jerr
	}
	return pub, r.pushImageSignatures(ctx, pl, st, &pub)
}

// Verify reads back every planned blob, manifest and tag through the
// registry package, one destination at a time.
func (imagesStage) Verify(ctx context.Context, r *run, pl *plan.Plan) []Check {
	st := pl.State.(*imageState)
	images, sigs := splitSigned(pl, func(o plan.Object) bool { return o.Kind == plan.KindSignature })
	byDest := map[string][]plan.Object{}
	for _, o := range images {
		byDest[o.Dest] = append(byDest[o.Dest], o)
	}
	var checks []Check
	done := map[string]bool{}
	for _, ip := range st.pushes {
		dest := ip.Dest
		if done[dest] {
			continue
		}
		done[dest] = true
		objs := byDest[dest]
		for i, err := range image.CheckPushed(ctx, objs, ip.options(r)) {
			c := Check{What: "images", Object: objs[i].Dest + " " + objs[i].Kind + " " + objs[i].Key, OK: err == nil}
			if err != nil {
				c.Detail = err.Error()
			}
			checks = append(checks, c)
		}
	}
	return append(checks, r.verifyImageSignatures(ctx, sigs, st)...)
}

// checkImageAccess checks push access to every image target before
// anything is sent.
func (r *run) checkImageAccess(ctx context.Context, plans []*plan.Plan) error {
	for _, pl := range plans {
		st, ok := pl.State.(*imageState)
		if !ok || pl.Skipped != "" {
			continue
		}
		for _, ip := range st.pushes {
			if err := image.CheckAccess(ctx, ip.Dest, image.PushOptions{Insecure: ip.Insecure, Tags: ip.Tags}); err != nil {
				return err
			}
		}
	}
	return nil
}
