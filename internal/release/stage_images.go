package release

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/image"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/project"
)

// imagesStage pushes the images to every image target of the environment
// (SPEC §10.2 step 2): each system's manifest, then one index per tag.
type imagesStage struct{}

func (imagesStage) Name() string { return "images" }
func (imagesStage) Skip(u *upload) string {
	if len(u.t.Env.Images) == 0 {
		return "no image targets configured"
	}
	if len(u.rec.Images) == 0 && len(archivesOf(u.rec)) == 0 {
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
		dest := t.Repository
		if dir, ok := ociDir(p, dest); ok {
			dest = "oci:" + dir
		}
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

func (imagesStage) Run(ctx context.Context, u *upload) (Published, error) {
	pushes, err := imagePushes(u.p, u.t.Env, u.rec, u.stableAlias)
	if err != nil {
		return Published{}, err
	}
	pub := Published{Where: u.where("images")}
	for _, ip := range pushes {
		sources, err := ip.Sources()
		if err != nil {
			return pub, err
		}
		res, err := image.Push(ctx, sources, image.PushOptions{
			Dest: ip.Dest, Insecure: ip.Insecure, Tags: ip.Tags,
			Cache: &image.Cache{Dir: image.DefaultCacheDir()}, RelengVersion: "releng",
			Progress: func(line string) { u.say("images: %s", line) },
		})
		if err != nil {
			return pub, fmt.Errorf("push image %s to %s: %w", ip.Image, ip.Dest, err)
		}
		pub.Objects += len(res.Images) + len(res.Tags)
		pub.Sent += res.Uploaded
		pub.Bytes += res.Stats.BlobBytes
	}
	return pub, nil
}

// checkImageAccess checks push access to every image target.
func (u *upload) checkImageAccess(ctx context.Context) error {
	if (imagesStage{}).Skip(u) != "" || u.opts.Target != "all" {
		return nil
	}
	pushes, err := imagePushes(u.p, u.t.Env, u.rec, u.stableAlias)
	if err != nil {
		return err
	}
	for _, ip := range pushes {
		if err := image.CheckAccess(ctx, ip.Dest, image.PushOptions{Insecure: ip.Insecure, Tags: ip.Tags}); err != nil {
			return err
		}
	}
	return nil
}

// verifyImages resolves every tag of every push to an index naming the
// built manifests.
func verifyImages(ctx context.Context, p *project.Project, env *config.Environment, rec *artifacts.Record, latest bool) []Check {
	pushes, err := imagePushes(p, env, rec, latest)
	if err != nil {
		return []Check{{What: "images", Object: env.Name, Detail: err.Error()}}
	}
	var checks []Check
	for _, ip := range pushes {
		for _, tag := range ip.Tags {
			c := Check{What: "images", Object: ip.Dest + ":" + tag}
			idx, err := resolveIndex(ip.Dest, tag, ip.Insecure)
			if err != nil {
				c.Detail = err.Error()
				checks = append(checks, c)
				continue
			}
			im, err := idx.IndexManifest()
			if err != nil {
				c.Detail = err.Error()
				checks = append(checks, c)
				continue
			}
			got := map[string]bool{}
			for _, m := range im.Manifests {
				got[m.Digest.String()] = true
			}
			var missing []string
			for sys, d := range ip.Manifests {
				if !got[d] {
					missing = append(missing, sys+" "+d)
				}
			}
			if len(ip.Manifests) > 0 && len(im.Manifests) != len(ip.Manifests) {
				c.Detail = fmt.Sprintf("index has %d manifests, build.json has %d", len(im.Manifests), len(ip.Manifests))
			} else if len(missing) > 0 {
				c.Detail = "index lacks " + strings.Join(missing, ", ")
			} else {
				c.OK = true
			}
			checks = append(checks, c)
		}
	}
	return checks
}

func resolveIndex(dest, tag string, insecure bool) (v1.ImageIndex, error) {
	if dir, ok := strings.CutPrefix(dest, "oci:"); ok {
		root, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return nil, err
		}
		m, err := root.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range m.Manifests {
			if d.Annotations["org.opencontainers.image.ref.name"] == tag {
				return root.ImageIndex(d.Digest)
			}
		}
		return nil, fmt.Errorf("no index tagged %s in %s", tag, dir)
	}
	var opts []name.Option
	host := strings.SplitN(dest, "/", 2)[0]
	if insecure || strings.HasPrefix(host, "localhost") || strings.HasPrefix(host, "127.0.0.1") {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(dest+":"+tag, opts...)
	if err != nil {
		return nil, err
	}
	return remote.Index(ref, remote.WithAuthFromKeychain(registry.DefaultKeychain()))
}
