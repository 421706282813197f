// Package release holds releng's release stages — build, and the publishing
// stages that follow it — each a small function over the project and the
// artifact record (release/build.json), so that later commands never
// recompute what an earlier one decided.
package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
)

// BuildOptions are the flags of `releng build`.
type BuildOptions struct {
	Profile    string // default: build.default_profile
	Target     string // "all" (default) or "manual"
	NoCheckGit bool
	// Strict fails the build when [checks] max_closure_growth cannot be
	// checked (a first release, an environment that cannot be read).
	Strict bool
	// NixEnv is appended to the environment of Nix commands.
	NixEnv []string
	// NixLog receives Nix's build log as Nix writes it.
	NixLog io.Writer
	// Run is the run's context: progress, releng's version.
	Run *runctx.Run
}

// Build evaluates and realises the release jobs and lays out
// release/artifacts, release/manual and release/build.json (SPEC §7).
func Build(ctx context.Context, p *project.Project, opts BuildOptions) (*artifacts.Record, error) {
	cfg := p.Config
	logw := opts.NixLog
	if logw == nil {
		logw = io.Discard
	}
	say := func(format string, args ...any) { opts.Run.Infof("build", format, args...) }

	profile := opts.Profile
	if profile == "" {
		profile = cfg.Build.DefaultProfile
	}
	if !contains(cfg.Build.Profiles, profile) {
		return nil, &config.Error{File: cfg.Path, Msg: fmt.Sprintf("profile %q is not listed in build.profiles %v (pass one of them to --profile, or add it to releng.toml)", profile, cfg.Build.Profiles)}
	}
	target := opts.Target
	if target == "" {
		target = "all"
	}
	if target != "all" && target != "manual" {
		return nil, &config.Error{Msg: fmt.Sprintf("--target %q: must be \"all\" or \"manual\"", target)}
	}
	version := p.Version.Version
	commit, err := p.Git.Head(ctx)
	if err != nil {
		return nil, err
	}
	if !opts.NoCheckGit {
		if err := checkOnTag(ctx, p, commit); err != nil {
			return nil, err
		}
	}
	// release/ is cleared below: refuse now, before Nix runs, if it holds
	// anything releng did not write.
	outputs, err := p.Outputs()
	if err != nil {
		return nil, err
	}
	if err := outputs.CheckClear("state", config.LocalDir); err != nil {
		return nil, err
	}
	if err := p.Git.Exclude(ctx, "/"+strings.Trim(cfg.ReleaseDir, "/")+"/"); err != nil {
		return nil, err
	}

	vars := p.Vars()
	vars["profile"] = profile
	installable, err := config.Expand(cfg.Build.Jobs, vars)
	if err != nil {
		return nil, &config.Error{File: cfg.Path, Msg: "build.jobs: " + err.Error()}
	}
	nix := &nixbuild.Nix{Dir: p.Root, Env: opts.NixEnv, Log: logw}
	say("evaluating %s", installable)
	jobs, err := nix.Evaluate(ctx, installable, nixbuild.Evaluator(cfg.Build.Evaluator), max(cfg.Build.MaxJobs, 1))
	if err != nil {
		return nil, err
	}
	manualJob := findJob(jobs, cfg.Build.Manual.Job)
	if target == "manual" {
		if manualJob == nil {
			return nil, fmt.Errorf("build.manual.job %q is not one of the jobs of %s (%s)", cfg.Build.Manual.Job, installable, attrs(jobs))
		}
		jobs = []nixbuild.Job{*manualJob}
	}

	releaseDir := p.ReleaseDir()
	// Clear release/ but state/ and local/: only what releng wrote there.
	if err := outputs.Clear("state", config.LocalDir); err != nil {
		return nil, err
	}
	say("building %d jobs", len(jobs))
	gcroots := filepath.Join(releaseDir, "gcroots")
	roots := map[string]fsutil.Kind{gcroots: fsutil.KindDir}
	for _, j := range jobs {
		for out := range j.Outputs {
			roots[filepath.Join(gcroots, nixbuild.GCRootName(j, out))] = fsutil.KindSymlink
		}
	}
	if err := outputs.Record(roots); err != nil {
		return nil, err
	}
	if err := nix.Realise(ctx, jobs, nixbuild.RealiseOptions{MaxJobs: cfg.Build.MaxJobs, Cores: cfg.Build.Cores, GCRoots: gcroots}); err != nil {
		return nil, err
	}

	staging := filepath.Join(releaseDir, ".staging")
	if err := outputs.Record(map[string]fsutil.Kind{staging: fsutil.KindTemp}); err != nil {
		return nil, err
	}
	if err := os.Mkdir(staging, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	rec := &artifacts.Record{
		Name: cfg.Name, Version: version, Major: p.Version.Major(), OfficialRelease: p.Version.OfficialRelease,
		Profile: profile, Target: target, Commit: commit, Jobs: jobs,
	}
	// The manual.
	if manualJob != nil {
		out, ok := manualJob.Outputs[cfg.Build.Manual.Output]
		if !ok {
			return nil, fmt.Errorf("build.manual: job %s has no output %q (it has: %s)", manualJob.Attr, cfg.Build.Manual.Output, outputNames(manualJob))
		}
		src := filepath.Join(out, cfg.Build.Manual.Path)
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("build.manual: %s does not exist or is not a directory (check build.manual.path %q in releng.toml)", src, cfg.Build.Manual.Path)
		}
		if err := artifacts.CopyTree(src, filepath.Join(staging, "manual")); err != nil {
			return nil, err
		}
	} else if target == "all" {
		say("warning: build.manual.job %q is not a job of %s: no manual", cfg.Build.Manual.Job, installable)
	}

	if target == "all" {
		if err := layoutArtifacts(ctx, p, jobs, staging, rec); err != nil {
			return nil, err
		}
		if err := checkGrowth(ctx, p, rec, opts); err != nil {
			return nil, err
		}
		if err := buildImages(ctx, p, nix, staging, rec, opts, say); err != nil {
			return nil, err
		}
		versionDir := filepath.Join(staging, filepath.FromSlash(rec.VersionDir))
		if err := artifacts.WriteChecksums(versionDir); err != nil {
			return nil, err
		}
	}
	// Move the finished trees into place (recorded in the ledger first),
	// then write the record last.
	for _, top := range recordedTrees {
		if _, err := os.Stat(filepath.Join(staging, top)); err == nil {
			if err := outputs.RecordTree(filepath.Join(staging, top), filepath.Join(releaseDir, top)); err != nil {
				return nil, err
			}
			if err := os.Rename(filepath.Join(staging, top), filepath.Join(releaseDir, top)); err != nil {
				return nil, err
			}
		}
	}
	for _, top := range recordedTrees {
		files, err := artifacts.RecordTree(releaseDir, top)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		rec.Files = append(rec.Files, files...)
	}
	if err := outputs.Record(map[string]fsutil.Kind{filepath.Join(releaseDir, artifacts.RecordFile): fsutil.KindFile}); err != nil {
		return nil, err
	}
	if err := rec.Save(releaseDir); err != nil {
		return nil, err
	}
	say("wrote %s (%d files)", filepath.Join(releaseDir, artifacts.RecordFile), len(rec.Files))
	return rec, nil
}

func layoutArtifacts(ctx context.Context, p *project.Project, jobs []nixbuild.Job, staging string, rec *artifacts.Record) error {
	cfg := p.Config
	name, version := cfg.Name, p.Version.Version
	rec.VersionDir = filepath.ToSlash(filepath.Join("artifacts", name, name+"-"+version))
	versionDir := filepath.Join(staging, filepath.FromSlash(rec.VersionDir))
	if err := os.MkdirAll(versionDir, 0o755); err != nil {
		return err
	}
	// Source tarball of the checked-out commit (the tag).
	tarball := filepath.Join(versionDir, name+"-"+version+".tar.gz")
	if err := p.Git.Run(ctx, "archive", "--format=tar.gz", "--prefix="+name+"-"+version+"/", "-o", tarball, "HEAD"); err != nil {
		return fmt.Errorf("source tarball: %w", err)
	}
	// manifest.nix from the manifest jobs' out outputs.
	rec.Manifest = map[string]string{}
	prefix := cfg.Build.ManifestJobs + "."
	for _, j := range jobs {
		if strings.HasPrefix(j.Attr, prefix) && !strings.Contains(j.Attr[len(prefix):], ".") {
			rec.Manifest[j.Attr[len(prefix):]] = j.Outputs["out"]
		}
	}
	if len(rec.Manifest) == 0 {
		return fmt.Errorf("build.manifest_jobs %q: no job at %s<system> (jobs: %s)", cfg.Build.ManifestJobs, prefix, attrs(jobs))
	}
	manifest := artifacts.ManifestNix(name, version, rec.Manifest)
	if err := os.WriteFile(filepath.Join(versionDir, "manifest.nix"), []byte(manifest), 0o644); err != nil {
		return err
	}
	// Contents of the copy jobs.
	for _, cj := range cfg.Build.CopyJobs {
		j := findJob(jobs, cj)
		if j == nil {
			return fmt.Errorf("build.copy_jobs names %q, which is not a job of this profile (jobs: %s)", cj, attrs(jobs))
		}
		if err := artifacts.CopyTree(j.Outputs["out"], versionDir); err != nil {
			return fmt.Errorf("copy job %s: %w", cj, err)
		}
	}
	// The root manifest.nix, the `nix upgrade-nix` pointer.
	return os.WriteFile(filepath.Join(staging, "artifacts", "manifest.nix"), []byte(manifest), 0o644)
}

// recordedTrees are the directories of release/ that build writes and
// build.json lists.
var recordedTrees = []string{"artifacts", "manual", "images"}

// buildImages builds the [[images]] into release/images and puts each
// docker-archive into the version directory as
// IMAGE-VERSION-docker-image-SYSTEM.tar.gz (SPEC §7).
func buildImages(ctx context.Context, p *project.Project, nix *nixbuild.Nix, staging string, rec *artifacts.Record, opts BuildOptions, say func(string, ...any)) error {
	cfg := p.Config
	if len(cfg.Images) == 0 {
		return nil
	}
	results, err := image.BuildAll(ctx, cfg, nix, rec.Version, p.Vars(), image.BuildOptions{
		Dir:           filepath.Join(staging, "images"),
		Cache:         &image.Cache{Dir: opts.Run.Cache()},
		RelengVersion: opts.Run.RelengVersion(),
		Progress:      func(line string) { say("%s", line) },
	})
	if err != nil {
		return err
	}
	versionDir := filepath.Join(staging, filepath.FromSlash(rec.VersionDir))
	for _, r := range results {
		ir := artifacts.Image{Name: r.Name, System: r.System, Layout: "images/" + filepath.Base(r.Layout), Manifest: r.Manifest.Digest}
		if r.Archive != "" {
			name := fmt.Sprintf("%s-%s-docker-image-%s.tar.gz", r.Name, rec.Version, r.System)
			if err := os.Rename(r.Archive, filepath.Join(versionDir, name)); err != nil {
				return err
			}
			ir.Archive = rec.VersionDir + "/" + name
		}
		rec.Images = append(rec.Images, ir)
	}
	return nil
}

// checkOnTag requires HEAD to be exactly on tag VERSION with a clean tree.
func checkOnTag(ctx context.Context, p *project.Project, head string) error {
	v := p.Version.Version
	tagCommit, err := p.Git.TagCommit(ctx, v)
	if err != nil {
		return err
	}
	if tagCommit == "" {
		return fmt.Errorf("tag %s does not exist: run `releng tag` first (or pass --no-check-git to build the checkout as it is)", v)
	}
	if tagCommit != head {
		return fmt.Errorf("HEAD (%s) is not on tag %s (%s): run `git checkout %s` (or pass --no-check-git)", short(head), v, short(tagCommit), v)
	}
	dirty, err := p.Git.Dirty(ctx)
	if err != nil {
		return err
	}
	if len(dirty) > 0 {
		return fmt.Errorf("the work tree has changes to tracked files (%s): commit or stash them (or pass --no-check-git)", strings.Join(dirty, "; "))
	}
	return nil
}

func findJob(jobs []nixbuild.Job, attr string) *nixbuild.Job {
	for i := range jobs {
		if jobs[i].Attr == attr {
			return &jobs[i]
		}
	}
	return nil
}

func attrs(jobs []nixbuild.Job) string {
	var a []string
	for _, j := range jobs {
		a = append(a, j.Attr)
	}
	return strings.Join(a, ", ")
}

func outputNames(j *nixbuild.Job) string {
	var o []string
	for k := range j.Outputs {
		o = append(o, k)
	}
	return strings.Join(o, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
