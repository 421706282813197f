package release

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/project"
)

// UploadOptions are the flags of `releng upload`.
type UploadOptions struct {
	Environment  string
	Target       string // "all" (default) or "manual"
	NoConfirm    bool
	ForcePushTag bool
	NoCheckGit   bool
	DryRun       bool
	// AllowInsecureKey accepts a signing key file readable by others.
	AllowInsecureKey bool
	// In is read for the confirmation phrase.
	In io.Reader
	// Log receives progress lines.
	Log io.Writer
	// Colour renders the environment's name in its colour.
	Colour func(colour, s string) string
	// NixEnv is appended to the environment of Nix commands.
	NixEnv []string
}

// Published is what an upload step wrote or found already there.
type Published struct {
	Step    string `json:"step"`
	Where   string `json:"where"`
	Objects int    `json:"objects"`
	Sent    int    `json:"sent"`
	Bytes   int64  `json:"bytes_sent"`
	Skipped string `json:"skipped,omitempty"`
}

// UploadReport is the result of an upload.
type UploadReport struct {
	Environment string      `json:"environment"`
	Version     string      `json:"version"`
	DryRun      bool        `json:"dry_run"`
	Steps       []Published `json:"steps"`
}

// upload is the state shared by the upload stages.
type upload struct {
	p           *project.Project
	opts        UploadOptions
	t           *Target
	rec         *artifacts.Record
	j           *journal.Journal
	official    bool
	stableAlias bool // move the docs stable alias and write the root manifest
	say         func(format string, args ...any)
	report      *UploadReport
}

// stage is one step of an upload (SPEC §10.2), in order.
type stage interface {
	Name() string
	// Skip returns why the stage does not run ("" to run it).
	Skip(u *upload) string
	Run(ctx context.Context, u *upload) (Published, error)
}

// uploadStages is the order of SPEC §10.2: nothing is published before what
// it points at.
var uploadStages = []stage{
	cacheStage{},
	imagesStage{},
	releasesStage{},
	docsStage{},
	manifestStage{},
	gitStage{},
}

// Upload publishes the built release to an environment.
func Upload(ctx context.Context, p *project.Project, opts UploadOptions) (*UploadReport, error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if opts.Colour == nil {
		opts.Colour = func(_, s string) string { return s }
	}
	if opts.Target == "" {
		opts.Target = "all"
	}
	if opts.Target != "all" && opts.Target != "manual" {
		return nil, &config.Error{Msg: fmt.Sprintf("--target %q: must be \"all\" or \"manual\"", opts.Target)}
	}
	u := &upload{p: p, opts: opts, say: func(format string, args ...any) { fmt.Fprintf(logw, "releng: "+format+"\n", args...) }}

	rec, err := artifacts.Load(p.ReleaseDir())
	if err != nil {
		return nil, err
	}
	u.rec = rec
	if err := u.preflight(ctx); err != nil {
		return nil, err
	}
	if u.t, err = OpenTarget(ctx, p, opts.Environment, TargetOptions{NeedCredentials: !opts.DryRun}); err != nil {
		return nil, err
	}
	env := u.t.Env
	u.report = &UploadReport{Environment: env.Name, Version: rec.Version, DryRun: opts.DryRun}
	var m *gitflow.Maintenance
	if u.official, u.stableAlias, m, err = releaseKind(ctx, p, rec); err != nil {
		return nil, err
	}
	if m.Maintenance {
		u.say("%s is a maintenance release (%s has %s): no latest tag, no stable docs, no root manifest.nix", rec.Version, m.MainRef, m.NewestOnMain)
	}

	name := opts.Colour(env.Colour, env.Name)
	u.say("plan: publish %s %s to %s", rec.Name, rec.Version, name)
	for _, s := range u.stages() {
		if why := s.Skip(u); why != "" {
			u.say("  %-9s skipped: %s", s.Name(), why)
		} else {
			u.say("  %-9s %s  (%s)", s.Name(), u.where(s.Name()), u.planSize(s.Name()))
		}
	}
	if opts.DryRun {
		for _, s := range u.stages() {
			u.report.Steps = append(u.report.Steps, Published{Step: s.Name(), Where: u.where(s.Name()), Skipped: "dry run"})
		}
		return u.report, nil
	}
	if *env.Confirm && !opts.NoConfirm {
		if err := confirm(opts.In, logw, env.Name, name); err != nil {
			return nil, err
		}
	}
	if err := u.checkAccess(ctx); err != nil {
		return nil, err
	}
	if err := u.checkImageAccess(ctx); err != nil {
		return nil, err
	}

	state := p.StateDir()
	lock, err := journal.Acquire(filepath.Join(state, env.Name+".lock"), "upload")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	u.j, err = journal.Open(filepath.Join(state, env.Name+".journal"), releaseID(rec))
	if err != nil {
		return nil, err
	}
	defer u.j.Close()

	for _, s := range u.stages() {
		if why := s.Skip(u); why != "" {
			u.report.Steps = append(u.report.Steps, Published{Step: s.Name(), Skipped: why})
			continue
		}
		if u.j.StepDone(s.Name()) {
			u.say("%s: done in an earlier run", s.Name())
			u.report.Steps = append(u.report.Steps, Published{Step: s.Name(), Where: u.where(s.Name()), Skipped: "done in an earlier run"})
			continue
		}
		start := time.Now()
		pub, err := s.Run(ctx, u)
		if err != nil {
			done := u.j.Steps()
			sort.Strings(done)
			return u.report, fmt.Errorf("upload to %s stopped at step %s: %w\npublished so far: steps %v and %d objects (journal %s); run `releng upload` again to continue", env.Name, s.Name(), err, done, u.j.Objects(), u.j.Path())
		}
		pub.Step = s.Name()
		if err := u.j.Append(journal.Entry{Kind: "step", Step: s.Name()}); err != nil {
			return u.report, err
		}
		u.say("%s: %d objects, %d sent (%s) in %s", s.Name(), pub.Objects, pub.Sent, binarycache.Size(pub.Bytes), time.Since(start).Round(time.Millisecond))
		u.report.Steps = append(u.report.Steps, pub)
	}
	return u.report, nil
}

// releaseKind says where a release goes (SPEC §6.3, §10.2): official
// releases publish their manual under MAJOR; stable ones — official, not a
// pre-release, not on a maintenance branch — also move the latest image tag,
// the docs stable alias and the root manifest.nix.
func releaseKind(ctx context.Context, p *project.Project, rec *artifacts.Record) (official, stable bool, m *gitflow.Maintenance, err error) {
	m, err = gitflow.DetectMaintenance(ctx, p)
	if err != nil {
		return false, false, nil, err
	}
	official = rec.OfficialRelease
	stable = official && !p.Version.IsPrerelease() && !m.Maintenance
	return official, stable, m, nil
}

func releaseID(rec *artifacts.Record) string {
	return rec.Name + " " + rec.Version + " " + rec.Commit
}

func (u *upload) stages() []stage {
	if u.opts.Target == "manual" {
		return []stage{docsStage{}}
	}
	return uploadStages
}

func (u *upload) where(step string) string {
	t := u.t
	switch step {
	case "cache":
		if t.CacheURI != nil {
			return t.CacheURI.Raw
		}
	case "images":
		var repos []string
		for _, it := range t.Env.Images {
			repos = append(repos, it.Repository)
		}
		return strings.Join(repos, ", ")
	case "releases", "manifest":
		if t.Releases != nil {
			return t.Releases.String()
		}
	case "docs":
		if t.Docs != nil {
			return t.Docs.String()
		}
	case "git":
		return "git remote of " + t.Env.Name
	}
	return ""
}

// planSize says how much a step is about to publish, for the plan.
func (u *upload) planSize(step string) string {
	count := func(prefix string, copies int) string {
		n, bytes := 0, int64(0)
		for _, f := range u.rec.Files {
			if strings.HasPrefix(f.Path, prefix) {
				n++
				bytes += f.Size
			}
		}
		return fmt.Sprintf("%d objects, %s", n*copies, binarycache.Size(bytes*int64(copies)))
	}
	switch step {
	case "cache":
		drvs, outs := CacheRoots(u.p.Config, u.rec)
		return fmt.Sprintf("closures of %d derivations and %d outputs", len(drvs), len(outs))
	case "images":
		return fmt.Sprintf("%d images to %d targets", len(u.rec.Images), len(u.t.Env.Images))
	case "releases":
		return count(u.rec.VersionDir+"/", 1)
	case "docs":
		return count("manual/", len(DocsPrefixes(u.rec.Name, u.rec.Major, u.official, u.stableAlias)))
	case "manifest":
		return "manifest.nix"
	case "git":
		return "branch and tag " + u.rec.Version
	}
	return ""
}

// preflight is SPEC §10.1: HEAD on the tag and clean (unless --no-check-git),
// and the artifacts matching build.json.
func (u *upload) preflight(ctx context.Context) error {
	p, rec := u.p, u.rec
	if rec.Version != p.Version.Version {
		return fmt.Errorf("release/build.json is for %s, the version file says %s: run `releng build` again", rec.Version, p.Version.Version)
	}
	if !u.opts.NoCheckGit {
		head, err := p.Git.Head(ctx)
		if err != nil {
			return err
		}
		if err := checkOnTag(ctx, p, head); err != nil {
			return err
		}
		if head != rec.Commit {
			return fmt.Errorf("release/build.json was built from %s, HEAD is %s: run `releng build` again", short(rec.Commit), short(head))
		}
	}
	if u.opts.Target == "all" && rec.Target != "all" {
		return fmt.Errorf("release/build.json holds only the %s: run `releng build` (without --target) before uploading everything, or pass --target manual", rec.Target)
	}
	problems, err := rec.Check(p.ReleaseDir())
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		var lines []string
		for _, pr := range problems {
			lines = append(lines, pr.Path+": "+pr.What)
		}
		return fmt.Errorf("release/ does not match release/build.json; run `releng build` again:\n  %s", strings.Join(lines, "\n  "))
	}
	return nil
}

// checkAccess makes one cheap authenticated request per bucket, so that bad
// credentials stop the upload before anything is published.
func (u *upload) checkAccess(ctx context.Context) error {
	for _, b := range []bucket.Bucket{u.t.Releases, u.t.Docs, u.t.Cache} {
		if b == nil {
			continue
		}
		if _, err := b.List(ctx, "releng-access-check/", bucket.ListOptions{}); err != nil && !errors.Is(err, bucket.ErrNotFound) {
			return fmt.Errorf("cannot reach %s with these credentials: %w", b.String(), err)
		}
	}
	return nil
}

func confirm(in io.Reader, w io.Writer, env, coloured string) error {
	phrase := "I want to release this to " + env
	fmt.Fprintf(w, "Type %q to publish to %s: ", phrase, coloured)
	if in == nil {
		return fmt.Errorf("environment %s needs confirmation and there is no input; pass --noconfirm", env)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("environment %s needs confirmation (type %q, or pass --noconfirm): %v", env, phrase, err)
	}
	if strings.TrimSpace(line) != phrase {
		return fmt.Errorf("confirmation phrase not typed; nothing was published")
	}
	return nil
}
