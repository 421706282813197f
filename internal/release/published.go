package release

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/closure"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/version"
)

// VersionManifestKey is the key of a version's manifest.nix in the
// releases bucket: NAME/NAME-VERSION/manifest.nix.
func VersionManifestKey(name, ver string) string {
	return name + "/" + name + "-" + ver + "/manifest.nix"
}

// NotPublishedError is a version without a manifest.nix in an environment.
type NotPublishedError struct {
	Env, Version, URL string
	// Published are the versions the bucket holds, oldest first (nil if
	// it cannot be listed).
	Published []string
}

func (e *NotPublishedError) Error() string {
	msg := fmt.Sprintf("version %s is not published to environment %s: %s does not exist", e.Version, e.Env, e.URL)
	if e.Published != nil {
		if len(e.Published) == 0 {
			return msg + " (no version is published there)"
		}
		return msg + " (published: " + strings.Join(e.Published, ", ") + ")"
	}
	return msg
}

// manifestEntry is one `SYSTEM = "STOREPATH";` of a manifest.nix.
var manifestEntry = regexp.MustCompile(`(?m)^\s*("[^"\n]*"|[A-Za-z_][A-Za-z0-9_'-]*)\s*=\s*"([^"\n]*)"\s*;`)

// ParseManifestNix returns the store paths a manifest.nix (as releng and
// Lix write it: an attribute set of system = "store path") names, sorted.
// source names it in errors.
func ParseManifestNix(data []byte, source string) ([]nixstore.StorePath, error) {
	var paths []nixstore.StorePath
	for _, m := range manifestEntry.FindAllSubmatch(data, -1) {
		p := string(m[2])
		sp, err := nixstore.ParseStorePath(path.Dir(p), p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", source, m[1], err)
		}
		if !slices.Contains(paths, sp) {
			paths = append(paths, sp)
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s names no store path (want lines like `x86_64-linux = \"/nix/store/…\";`)", source)
	}
	slices.SortFunc(paths, func(a, b nixstore.StorePath) int { return strings.Compare(a.String(), b.String()) })
	return paths, nil
}

// PublishedRoots reads the store paths the manifest.nix of version names
// in t's releases bucket.
func PublishedRoots(ctx context.Context, p *project.Project, t *Target, ver string) ([]nixstore.StorePath, error) {
	if err := needReleasesAndCache(p, t); err != nil {
		return nil, err
	}
	name := p.Config.Name
	key := VersionManifestKey(name, ver)
	url := bucket.ObjectURL(t.Releases, key)
	rc, err := t.Releases.Get(ctx, key)
	if errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrForbidden) {
		published, lerr := PublishedVersions(ctx, p, t)
		if lerr != nil {
			published = nil
		} else if published == nil {
			published = []string{}
		}
		return nil, &NotPublishedError{Env: t.Env.Name, Version: ver, URL: url, Published: published}
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := fsutil.ReadAllLimited(rc, url, fsutil.MaxManifestNix)
	if err != nil {
		return nil, err
	}
	return ParseManifestNix(data, url)
}

// needReleasesAndCache says what to configure when t lacks the releases
// bucket or the cache a published closure is read from.
func needReleasesAndCache(p *project.Project, t *Target) error {
	for _, need := range []struct {
		missing bool
		key     string
	}{{t.Releases == nil, "releases"}, {t.Cache == nil, "cache"}} {
		if need.missing {
			return &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environment %s has no %s (environments.%s.%s): a published release is read from the releases bucket's manifest.nix and the cache's narinfos", t.Env.Name, need.key, t.Env.Name, need.key)}
		}
	}
	return nil
}

// PublishedVersions lists the version directories NAME/NAME-VERSION/ of
// t's releases bucket whose VERSION is a valid version, oldest first
// (version.Compare, PEP 440).
func PublishedVersions(ctx context.Context, p *project.Project, t *Target) ([]string, error) {
	name := p.Config.Name
	objs, err := t.Releases.List(ctx, name+"/"+name+"-", bucket.ListOptions{})
	if err != nil {
		return nil, err
	}
	type pv struct {
		s string
		v version.PEP440
	}
	var vs []pv
	for _, o := range objs {
		if !o.IsPrefix {
			continue
		}
		s := strings.TrimSuffix(strings.TrimPrefix(o.Key, name+"/"+name+"-"), "/")
		if v, err := version.Parse(s); err == nil {
			vs = append(vs, pv{s, v})
		}
	}
	slices.SortFunc(vs, func(a, b pv) int { return version.Compare(a.v, b.v) })
	var out []string
	for _, v := range vs {
		out = append(out, v.s)
	}
	return out, nil
}

// LatestPublishedBefore returns the highest version published to t that
// is lower than ver (PEP 440 order), whose version directory holds a
// manifest.nix and no yanked.json, or "" when there is none.
func LatestPublishedBefore(ctx context.Context, p *project.Project, t *Target, ver string) (string, error) {
	cur, err := version.Parse(ver)
	if err != nil {
		return "", err
	}
	if err := needReleasesAndCache(p, t); err != nil {
		return "", err
	}
	all, err := PublishedVersions(ctx, p, t)
	if err != nil {
		return "", err
	}
	for i := len(all) - 1; i >= 0; i-- {
		v, _ := version.Parse(all[i])
		if version.Compare(v, cur) >= 0 {
			continue
		}
		_, err := t.Releases.Stat(ctx, VersionManifestKey(p.Config.Name, all[i]))
		if err == nil {
			// A yanked release is not the one to compare with.
			if y, err := readYanked(ctx, t, p.Config.Name, all[i]); err != nil {
				return "", err
			} else if y != nil {
				continue
			}
			return all[i], nil
		}
		if !errors.Is(err, bucket.ErrNotFound) && !errors.Is(err, bucket.ErrForbidden) {
			return "", err
		}
	}
	return "", nil
}

// PublishedSets reads the closures of versions published to t, named
// VERSION@ENV: each version's manifest.nix, then every narinfo of their
// closures from t's cache, each read once however many versions share it.
func PublishedSets(ctx context.Context, p *project.Project, t *Target, versions ...string) ([]closure.Set, error) {
	sets := make([]closure.Set, len(versions))
	var all []nixstore.StorePath
	for i, v := range versions {
		roots, err := PublishedRoots(ctx, p, t, v)
		if err != nil {
			return nil, err
		}
		sets[i] = closure.Set{Name: v + "@" + t.Env.Name, Roots: roots}
		all = append(all, roots...)
	}
	what := fmt.Sprintf("named by the manifest.nix of %s in environment %s", strings.Join(versions, " and "), t.Env.Name)
	infos, err := closure.FromCache(ctx, t.Cache, all, what)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", t.Env.Name, err)
	}
	for i := range sets {
		sets[i].Infos = infos
	}
	return sets, nil
}
