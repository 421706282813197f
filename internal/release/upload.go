package release

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
)

// UploadOptions are the flags of `releng upload`.
type UploadOptions struct {
	Environment  string
	Target       string // "all" (default) or "manual"
	NoConfirm    bool
	ForcePushTag bool
	NoCheckGit   bool
	// DryRun makes the plans and stops: nothing is written anywhere, no
	// journal, no lock.
	DryRun bool
	// AllowInsecureKey accepts a signing key file readable by others.
	AllowInsecureKey bool
	// Unyank publishes a yanked version again, removing its yanked.json.
	Unyank bool
	// NixEnv is appended to the environment of Nix commands.
	NixEnv []string
	// Run is the run's context: progress, confirmation, version.
	Run *runctx.Run
}

// Published is what an upload step sent.
type Published struct {
	Step    string `json:"step"`
	Where   string `json:"where"`
	Objects int    `json:"objects"`
	Sent    int    `json:"sent"`
	Deleted int    `json:"deleted,omitempty"`
	Bytes   int64  `json:"bytes_sent"`
	Skipped string `json:"skipped,omitempty"`
}

// UploadReport is the result of an upload: the plans, and what each step
// sent (none in a dry run).
type UploadReport struct {
	Environment string       `json:"environment"`
	Version     string       `json:"version"`
	DryRun      bool         `json:"dry_run"`
	Plans       []*plan.Plan `json:"plans"`
	Steps       []Published  `json:"steps"`
}

// run is what the stages of one upload or verify share.
type run struct {
	rc       *runctx.Run
	p        *project.Project
	t        *Target
	rec      *artifacts.Record
	opts     UploadOptions
	official bool
	stable   bool // move latest, the docs stable alias and the root manifest
	// yanked is the version's yanked.json in the environment, nil when it
	// is not yanked (or has no releases bucket).
	yanked *YankRecord
	// j journals what is sent; nil in dry runs and verify.
	j *journal.Journal
	// command is "upload" or "promote", for messages and the lock.
	command string
	// from is where promote copies from; nil for upload and verify.
	from *Target
	// keys sign (upload) and check (upload, verify) signatures.
	keys releaseKeys
	// bodies are objects made in memory (signatures), by object URL.
	bodies map[string][]byte
}

// stage is one step of publishing (SPEC §10.2). Plan says what it
// publishes by asking the destination; Run sends what the plan says to
// send; Verify reads back every object of the plan. A stage has no other
// description of what it writes.
type stage interface {
	Name() string
	// Plan returns the stage's plan; one with Skipped set does nothing.
	Plan(ctx context.Context, r *run) (*plan.Plan, error)
	Run(ctx context.Context, r *run, pl *plan.Plan) (Published, error)
	Verify(ctx context.Context, r *run, pl *plan.Plan) []Check
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

// stages are the stages of the run's target: all, or the manual alone.
func (r *run) stages() []stage {
	if r.opts.Target == "manual" {
		return []stage{docsStage{}}
	}
	return uploadStages
}

// openRun loads what the stages of an upload or verify need.
func openRun(ctx context.Context, p *project.Project, opts UploadOptions) (*run, error) {
	if opts.Target == "" {
		opts.Target = "all"
	}
	if opts.Target != "all" && opts.Target != "manual" {
		return nil, &config.Error{Msg: fmt.Sprintf("--target %q: must be \"all\" or \"manual\"", opts.Target)}
	}
	rec, err := artifacts.Load(p.ReleaseDir())
	if err != nil {
		return nil, err
	}
	r := &run{rc: opts.Run, p: p, rec: rec, opts: opts, command: "upload", bodies: map[string][]byte{}}
	if r.t, err = OpenTarget(ctx, p, opts.Environment, TargetOptions{NeedCredentials: true, OnRetry: r.onRetry, Retry: r.rc.RetryPolicy()}); err != nil {
		return nil, err
	}
	if r.keys.pub, err = r.t.ReleasePublicKey(p); err != nil {
		return nil, err
	}
	var m *gitflow.Maintenance
	if r.official, r.stable, m, err = releaseKind(ctx, p, rec); err != nil {
		return nil, err
	}
	if m.Maintenance {
		r.rc.Infof("", "%s is a maintenance release (%s has %s): no latest tag, no stable docs, no root manifest.nix", rec.Version, m.MainRef, m.NewestOnMain)
	}
	if r.yanked, err = readYanked(ctx, r.t, rec.Name, rec.Version); err != nil {
		return nil, err
	}
	if r.yanked != nil && !opts.Unyank {
		// What the yank moved stays where it is: upload refuses (unless
		// --unyank), verify checks the rest and says so.
		r.stable = false
	}
	return r, nil
}

// onRetry reports a retried request as progress.
func (r *run) onRetry(e retry.Event) {
	r.rc.Emit(runctx.Event{Kind: runctx.Retry, Object: e.URL, Message: e.String()})
}

// plans makes the plan of every stage, in order.
func (r *run) plans(ctx context.Context) ([]*plan.Plan, error) {
	var plans []*plan.Plan
	for _, s := range r.stages() {
		pl, err := s.Plan(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("plan of %s: %w", s.Name(), err)
		}
		pl.Stage = s.Name()
		plans = append(plans, pl)
	}
	return plans, nil
}

// Upload publishes the built release to an environment: every stage plans
// (asking the destination what it holds), the plans are shown and
// confirmed, then executed in SPEC §10.2 order and journaled. A re-run
// plans again, so an object deleted or changed at the destination since is
// sent again; the journal keeps multipart uploads resumable.
func Upload(ctx context.Context, p *project.Project, opts UploadOptions) (*UploadReport, error) {
	r, err := openRun(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	ctx = retry.WithOnRetry(ctx, r.onRetry)
	if err := r.loadSigner(); err != nil {
		return nil, err
	}
	if err := r.preflight(ctx); err != nil {
		return nil, err
	}
	if y := r.yanked; y != nil && !opts.Unyank {
		return nil, fmt.Errorf("%s is yanked in %s (%s, at %s): upload refuses to publish it again; pass --unyank to remove its yanked.json and publish it (moving what upload moves back to it), or run `releng yank %s --environment %s --undo`",
			y.Version, r.t.Env.Name, y.Reason, y.Time, y.Version, r.t.Env.Name)
	}
	rep := &UploadReport{Environment: r.t.Env.Name, Version: r.rec.Version, DryRun: opts.DryRun}
	unlock, err := r.lockAndPlan(ctx, rep)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if opts.DryRun {
		return rep, nil
	}
	return rep, r.execute(ctx, rep)
}

// lockAndPlan takes the environment's lock — except in a dry run — held
// until unlock, so that no other run changes the destination between the
// plans and their execution; then it makes the plan of every stage.
func (r *run) lockAndPlan(ctx context.Context, rep *UploadReport) (unlock func(), err error) {
	unlock = func() {}
	if !r.opts.DryRun {
		lock, err := journal.Acquire(filepath.Join(r.p.StateDir(), r.t.Env.Name+".lock"), r.command)
		if err != nil {
			return nil, err
		}
		unlock = func() { lock.Release() }
	}
	if rep.Plans, err = r.plans(ctx); err != nil {
		unlock()
		return nil, err
	}
	for _, pl := range rep.Plans {
		if pl.Skipped != "" {
			r.rc.Infof(pl.Stage, "plan: skipped: %s", pl.Skipped)
		} else {
			r.rc.Infof(pl.Stage, "plan: %s → %s", pl.Totals(), pl.Dest)
		}
	}
	return unlock, nil
}

// execute asks for the confirmation phrase, checks access to the image
// targets, then runs the plans of rep in order, journaling every step and
// object; rep.Steps says what each stage did.
func (r *run) execute(ctx context.Context, rep *UploadReport) error {
	env := r.t.Env
	if runctx.Stopping(ctx) {
		return r.interrupted(ctx, rep)
	}
	if *env.Confirm && !r.opts.NoConfirm {
		phrase := "I want to release this to " + env.Name
		if r.rc == nil || r.rc.Confirm == nil {
			return fmt.Errorf("environment %s needs confirmation and there is nobody to ask; pass --noconfirm", env.Name)
		}
		if err := r.rc.Confirm(env.Name, phrase); err != nil {
			return err
		}
	}
	if err := r.checkImageAccess(ctx, rep.Plans); err != nil {
		return err
	}
	var err error
	if r.j, err = journal.Open(filepath.Join(r.p.StateDir(), env.Name+".journal"), releaseID(r.rec)); err != nil {
		return err
	}
	defer r.j.Close()

	for i, s := range r.stages() {
		pl := rep.Plans[i]
		if runctx.Stopping(ctx) {
			return r.interrupted(ctx, rep)
		}
		if pl.Skipped != "" {
			rep.Steps = append(rep.Steps, Published{Step: s.Name(), Where: pl.Dest, Skipped: pl.Skipped})
			continue
		}
		tot := pl.Totals()
		if err := r.j.Append(journal.Entry{Kind: "plan", Step: s.Name(), Plan: &tot}); err != nil {
			return err
		}
		r.rc.Emit(runctx.Event{Kind: runctx.StageStart, Stage: s.Name(), Count: tot.Send, Bytes: tot.SendBytes, Message: tot.String()})
		start := time.Now()
		pub, err := s.Run(ctx, r, pl)
		pub.Step, pub.Where = s.Name(), pl.Dest
		if err != nil {
			if errors.Is(err, runctx.ErrInterrupted) || (ctx.Err() != nil && runctx.Stopping(ctx)) {
				return r.interrupted(ctx, rep)
			}
			return r.stopped(rep, s.Name(), err)
		}
		if err := r.j.Append(journal.Entry{Kind: "step", Step: s.Name()}); err != nil {
			return err
		}
		r.rc.Emit(runctx.Event{Kind: runctx.StageDone, Stage: s.Name(), Count: pub.Sent, Bytes: pub.Bytes,
			Message: fmt.Sprintf("%d objects, %d sent (%s), %d deleted in %s", pub.Objects, pub.Sent, plan.Size(pub.Bytes), pub.Deleted, time.Since(start).Round(time.Millisecond))})
		rep.Steps = append(rep.Steps, pub)
	}
	return nil
}

// stopped says what was and was not published when stage step failed:
// the steps before it were published by this run (the journal also has
// them), step was cut part way (what it sent is journaled), the steps
// after it were not started.
func (r *run) stopped(rep *UploadReport, step string, err error) error {
	name := func(s, skipped string) string {
		if skipped != "" {
			return s + " (skipped)"
		}
		return s
	}
	var published, not []string
	for _, s := range rep.Steps {
		published = append(published, name(s.Step, s.Skipped))
	}
	for _, pl := range rep.Plans[len(rep.Steps)+1:] {
		not = append(not, name(pl.Stage, pl.Skipped))
	}
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	return fmt.Errorf("%s to %s stopped at step %s: %w\npublished: steps %s; %s part way (the journal %s records the %d objects published so far)\nnot published: steps %s; run `releng %s` again to continue (it plans again and sends only what is missing)",
		r.command, r.t.Env.Name, step, err, list(published), step, r.j.Path(), r.j.Objects(), list(not), r.command)
}

// InterruptedError is an upload stopped by the user (runctx.WithStop): the
// steps before were published whole, the objects in flight were sent
// (Aborted: cut, by a second signal), nothing after was started. Running
// the same upload again finishes it.
type InterruptedError struct {
	// Command is "upload" or "promote".
	Command string
	Env     string
	// Done of Steps steps were published (or skipped) before the stop.
	Done, Steps int
	// Objects is the number of objects the journal records as published.
	Objects int
	Journal string
	// Aborted: the context was cancelled, requests in flight were cut.
	Aborted bool
}

func (e *InterruptedError) Error() string {
	what := "interrupted"
	if e.Aborted {
		what = "aborted"
	}
	msg := fmt.Sprintf("%s to %s %s: %d of %d steps done, %d objects published", e.Command, e.Env, what, e.Done, e.Steps, e.Objects)
	if e.Journal != "" {
		msg += " (journal " + e.Journal + ")"
	}
	return msg
}

func (e *InterruptedError) Unwrap() error { return runctx.ErrInterrupted }

// interrupted says how far an upload got when it was asked to stop.
func (r *run) interrupted(ctx context.Context, rep *UploadReport) error {
	e := &InterruptedError{Command: r.command, Env: r.t.Env.Name, Done: len(rep.Steps), Steps: len(rep.Plans), Aborted: ctx.Err() != nil}
	if r.j != nil {
		e.Objects, e.Journal = r.j.Objects(), r.j.Path()
	}
	return e
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

// preflight is SPEC §10.1: HEAD on the tag and clean (unless --no-check-git),
// and the artifacts matching build.json.
func (r *run) preflight(ctx context.Context) error {
	p, rec := r.p, r.rec
	if rec.Version != p.Version.Version {
		return fmt.Errorf("release/build.json is for %s, the version file says %s: run `releng build` again", rec.Version, p.Version.Version)
	}
	if !r.opts.NoCheckGit {
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
	if r.opts.Target == "all" && rec.Target != "all" {
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

// ErrNotConfirmed is returned when the confirmation phrase was not typed.
var ErrNotConfirmed = errors.New("confirmation phrase not typed; nothing was published")
