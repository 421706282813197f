package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/gitflow"
	"github.com/releng-project/releng/internal/image"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
)

// PromoteOptions are the flags of `releng promote`.
type PromoteOptions struct {
	From, To     string
	NoConfirm    bool
	ForcePushTag bool
	// Force overwrites what the destination holds under the release's
	// names with other bytes (the plan says what).
	Force bool
	// DryRun makes the plans, checks the source, and stops.
	DryRun           bool
	AllowInsecureKey bool
	Run              *runctx.Run
}

// PromoteReport is the result of a promote: the plans, what each stage
// sent, and the destination read back.
type PromoteReport struct {
	From string `json:"from"`
	UploadReport
	Verify *VerifyReport `json:"verify,omitempty"`
}

// SourceError says that the environment promoted from does not hold the
// release as it was built: nothing was sent.
type SourceError struct {
	Env, Version string
	Problems     []string
}

func (e *SourceError) Error() string {
	const most = 10
	probs := e.Problems
	more := ""
	if len(probs) > most {
		more = fmt.Sprintf("\n  … and %d more", len(probs)-most)
		probs = probs[:most]
	}
	return fmt.Sprintf("%s does not hold %s as it was built (release/build.json); nothing was sent. Upload it there first, or promote from where it was published:\n  %s%s",
		e.Env, e.Version, strings.Join(probs, "\n  "), more)
}

// ConflictError says that the destination holds other bytes under names
// of the release; --force overwrites them.
type ConflictError struct {
	Env       string
	Conflicts []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s already holds other contents under names of this release; nothing was sent (pass --force to overwrite them):\n  %s", e.Env, strings.Join(e.Conflicts, "\n  "))
}

// Promote copies what environment opts.From published of the current
// version into opts.To (SPEC §11): the same stages and plans as upload,
// their bytes read from the source — cache paths copied byte for byte and
// re-signed with the destination's key, images copied by digest, bucket
// objects copied with their checksums — then the tag and branch pushed as
// upload does. It needs release/build.json (what the version is) but
// neither the artifacts nor the store paths: nothing is rebuilt. Before
// anything is sent it checks that the source holds every object of the
// plans as built, and that the destination holds no other bytes under the
// same names (unless Force). Planned, locked, journaled and resumable as
// upload; the destination is read back at the end.
func Promote(ctx context.Context, p *project.Project, opts PromoteOptions) (*PromoteReport, error) {
	if opts.From == "" || opts.To == "" {
		return nil, &config.Error{Msg: "promote needs --from ENV and --to ENV"}
	}
	from, err := p.Config.Environment(opts.From)
	if err != nil {
		return nil, err
	}
	to, err := p.Config.Environment(opts.To)
	if err != nil {
		return nil, err
	}
	if from.Name == to.Name {
		return nil, &config.Error{Msg: fmt.Sprintf("--from and --to are both %s: promote copies from one environment to another", from.Name)}
	}
	r, err := openRun(ctx, p, UploadOptions{Environment: to.Name, NoConfirm: opts.NoConfirm, ForcePushTag: opts.ForcePushTag,
		DryRun: opts.DryRun, AllowInsecureKey: opts.AllowInsecureKey, Run: opts.Run})
	if err != nil {
		return nil, err
	}
	r.command = "promote"
	if err := r.loadSigner(); err != nil { // the target's key signs what it publishes
		return nil, err
	}
	ctx = retry.WithOnRetry(ctx, r.onRetry)
	if r.from, err = OpenTarget(ctx, p, from.Name, TargetOptions{NeedCredentials: true, OnRetry: r.onRetry, Retry: r.rc.RetryPolicy()}); err != nil {
		return nil, err
	}
	if r.rec.Version != p.Version.Version {
		return nil, fmt.Errorf("release/build.json is for %s, the version file says %s: promote copies the version build.json records; check out that version", r.rec.Version, p.Version.Version)
	}
	if r.rec.Target != "all" {
		return nil, fmt.Errorf("release/build.json holds only the %s: promote copies whole releases; run `releng build`", r.rec.Target)
	}
	rep := &PromoteReport{From: from.Name, UploadReport: UploadReport{Environment: to.Name, Version: r.rec.Version, DryRun: opts.DryRun}}
	unlock, err := r.lockAndPlan(ctx, &rep.UploadReport)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.checkSource(ctx, rep.Plans); err != nil {
		return nil, err
	}
	if conflicts := r.conflicts(rep.Plans); len(conflicts) > 0 {
		if !opts.Force {
			return nil, &ConflictError{Env: to.Name, Conflicts: conflicts}
		}
		for _, c := range conflicts {
			r.rc.Warnf("", "--force: overwriting %s", c)
		}
	}
	if opts.DryRun {
		return rep, nil
	}
	if err := r.execute(ctx, &rep.UploadReport); err != nil {
		return rep, err
	}
	rep.Verify = &VerifyReport{Environment: to.Name, Version: r.rec.Version}
	for i, s := range r.stages() {
		pl := rep.Plans[i]
		if pl.Skipped != "" {
			continue
		}
		for _, c := range s.Verify(ctx, r, pl) {
			if !c.OK {
				rep.Verify.Failed++
			}
			rep.Verify.Checks = append(rep.Verify.Checks, c)
		}
	}
	if rep.Verify.Failed > 0 {
		return rep, fmt.Errorf("promoted to %s, but %d of %d checks of what it holds failed (see the table); run `releng verify --environment %s`", to.Name, rep.Verify.Failed, len(rep.Verify.Checks), to.Name)
	}
	return rep, nil
}

// planCacheCopy plans the copy of the closures of the jobs from the
// source's cache: the closure is read from its narinfos, not from a store.
func (r *run) planCacheCopy(ctx context.Context) (*plan.Plan, error) {
	opts, err := r.cacheCopyOptions()
	if err != nil {
		return nil, err
	}
	cp, err := binarycache.PlanCopy(ctx, opts)
	if err != nil {
		var se *binarycache.SourceError
		if errors.As(err, &se) {
			return nil, &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{se.Error()}}
		}
		return nil, err
	}
	cp.Plan.State = cp
	return cp.Plan, nil
}

// cacheCopyOptions are the source, destination and roots of the cache
// copy; the keys that sign are added by the run.
func (r *run) cacheCopyOptions() (binarycache.CopyOptions, error) {
	var opts binarycache.CopyOptions
	if r.from.Cache == nil {
		return opts, &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{"it has no cache, and " + r.t.Env.Name + " has one: set environments." + r.from.Env.Name + ".cache"}}
	}
	fromKeys, err := r.from.VerifyKeys(r.p)
	if err != nil {
		return opts, err
	}
	trusted, err := r.t.VerifyKeys(r.p)
	if err != nil {
		return opts, err
	}
	drvs, outputs := CacheRoots(r.p.Config, r.rec)
	var roots []nixstore.StorePath
	for _, s := range append(drvs, outputs...) {
		sp, err := nixstore.ParseStorePath(nixstore.DefaultStoreDir, s)
		if err != nil {
			return opts, fmt.Errorf("release/build.json: %w", err)
		}
		roots = append(roots, sp)
	}
	return binarycache.CopyOptions{From: r.from.CacheURI, FromBucket: r.from.Cache, FromKeys: fromKeys,
		URI: r.t.CacheURI, Bucket: r.t.Cache, Trusted: trusted, Roots: roots, Jobs: r.rc.JobsOr(0)}, nil
}

// runCacheCopy executes the cache's copy plan, signing with keys.
func (r *run) runCacheCopy(ctx context.Context, cp *binarycache.CopyPlan, keys []*nixstore.SecretKey) (Published, error) {
	opts, err := r.cacheCopyOptions()
	if err != nil {
		return Published{}, err
	}
	var jerr error
	opts.Keys, opts.OnEvent = keys, r.cacheEvent(&jerr)
	sum, err := binarycache.Copy(ctx, opts, cp)
	return r.cachePublished(sum, err, jerr)
}

// publishedSources makes each push of the destination copy the image the
// source environment holds at the version's tag.
func (r *run) publishedSources(ctx context.Context, pushes []imagePush) error {
	sources, err := imagePushes(r.p, r.from.Env, r.rec, r.stable)
	if err != nil {
		return err
	}
	for i := range pushes {
		ip := &pushes[i]
		k := slices.IndexFunc(sources, func(s imagePush) bool { return s.Image == ip.Image })
		if k < 0 {
			return &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{fmt.Sprintf("no image target of it takes the image %s, which %s's %s does", ip.Image, r.t.Env.Name, ip.Dest)}}
		}
		src := sources[k]
		if !slices.Contains(src.Tags, r.rec.Version) {
			return fmt.Errorf("environments.%s: the image target %s has no tag naming the version (%s), so promote cannot find the release's images there", r.from.Env.Name, src.Dest, r.rec.Version)
		}
		pub, err := image.ReadPublished(ctx, src.Dest, r.rec.Version, image.PushOptions{Insecure: src.Insecure, UserAgent: r.rc.UserAgent()})
		if err != nil {
			return &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{err.Error()}}
		}
		var problems []string
		for sys, want := range ip.Manifests {
			found := false
			for _, s := range pub.Sources {
				found = found || s.Published.Manifest != nil && oci.Digest(s.Published.Manifest) == want
			}
			if !found {
				problems = append(problems, fmt.Sprintf("%s:%s (%s) names no manifest %s, the %s image built", src.Dest, r.rec.Version, pub.Index.Digest, want, sys))
			}
		}
		if len(problems) > 0 {
			return &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: problems}
		}
		ip.Sources = func() ([]image.Source, error) { return pub.Sources, nil }
		ip.from = &src
	}
	return nil
}

// sourceObject is where promote reads a bucket stage's object from: the
// same key in the source's bucket, except for what moves between
// releases — the root manifest.nix is read from the version directory, the
// stable manual from the major's.
func (r *run) sourceObject(stage, key string) (bucket.Bucket, string, error) {
	var b bucket.Bucket
	switch stage {
	case "releases":
		b = r.from.Releases
	case "manifest":
		b, key = r.from.Releases, VersionManifestKey(r.rec.Name, r.rec.Version)
	case "docs":
		b = r.from.Docs
		if rest, ok := strings.CutPrefix(key, manualPrefix(r.rec.Name, "stable")); ok {
			key = manualPrefix(r.rec.Name, r.rec.Major) + rest
		}
	}
	if b == nil {
		return nil, "", &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{fmt.Sprintf("it has no bucket for the %s stage, and %s has one", stage, r.t.Env.Name)}}
	}
	return b, key, nil
}

// copyObject copies one planned object from the source's bucket, its
// SHA-256 checked while it is stored (a mismatch stores nothing).
func (r *run) copyObject(ctx context.Context, stage string, b bucket.Bucket, o plan.Object, popts bucket.PutOptions) error {
	src, key, err := r.sourceObject(stage, o.Key)
	if err != nil {
		return err
	}
	body := bucket.Reopen(func() (io.ReadCloser, error) { return src.Get(ctx, key) })
	defer body.Close()
	if _, err := b.Put(ctx, o.Key, body, o.Size, popts); err != nil {
		return fmt.Errorf("copy %s to %s: %w", bucket.ObjectURL(src, key), bucket.ObjectURL(b, o.Key), err)
	}
	return nil
}

// spool copies a large object of the source environment into an
// unlinked temporary file of the releng cache directory (nothing is left
// behind, even by kill -9), its size and SHA-256 checked, for a resumable
// upload to read.
func (r *run) spool(ctx context.Context, stage string, o plan.Object) (*os.File, error) {
	src, key, err := r.sourceObject(stage, o.Key)
	if err != nil {
		return nil, err
	}
	dir := r.rc.Cache()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".releng-spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	rc, err := src.Get(ctx, key)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, o.Size+1))
	if err == nil && (n != o.Size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != o.Digest) {
		err = fmt.Errorf("%s has %d bytes with sha256 %x, build.json says %d and %s", bucket.ObjectURL(src, key), n, h.Sum(nil), o.Size, o.Digest)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkSource checks, before anything is sent, that the source holds
// every object the plans copy, as built: each bucket object read back
// (size and SHA-256), every image blob, manifest and the version's tag
// (the cache's narinfos, signatures and NARs were checked by its plan),
// and the tag on its git remote. It names the source of each object in
// the plans.
func (r *run) checkSource(ctx context.Context, plans []*plan.Plan) error {
	var problems []string
	for _, pl := range plans {
		if pl.Skipped != "" {
			continue
		}
		switch pl.Stage {
		case "releases", "manifest", "docs":
			for i, o := range pl.Objects {
				if o.Why == plan.Delete {
					continue
				}
				src, key, err := r.sourceObject(pl.Stage, o.Key)
				if err != nil {
					return err
				}
				pl.Objects[i].Source = bucket.ObjectURL(src, key)
				so := o
				so.Key = key
				if c := checkObject(ctx, pl.Stage, src, so); !c.OK {
					problems = append(problems, c.Object+": "+c.Detail)
				}
			}
		case "images":
			for _, ip := range pl.State.(*imageState).pushes {
				sources, _ := ip.Sources()
				objs, err := image.PlanPush(ctx, sources, image.PushOptions{Dest: ip.from.Dest, Insecure: ip.from.Insecure, Tags: []string{r.rec.Version}, UserAgent: r.rc.UserAgent()})
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				for _, o := range objs {
					if o.Why != plan.Present {
						problems = append(problems, fmt.Sprintf("%s %s %s: %s %s", o.Dest, o.Kind, o.Key, o.Why, o.Detail))
					}
				}
			}
		case "git":
			if r.from.Env.GitRemote == nil && !r.from.Env.BuiltIn {
				continue
			}
			remote, err := gitflow.ResolveRemote(ctx, r.p, r.from.Env.Name)
			if err != nil {
				return err
			}
			tag := "refs/tags/" + r.rec.Version
			have, err := r.p.Git.LsRemote(ctx, remote.URL, tag)
			if err != nil {
				return err
			}
			for _, o := range pl.Objects {
				if o.Key == tag && have[tag] != o.Digest {
					problems = append(problems, fmt.Sprintf("%s on %s: %s, this repository's tag is %s", tag, remote.URL, orNone(have[tag]), short(o.Digest)))
				}
			}
		}
	}
	if len(problems) > 0 {
		return &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: problems}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "missing"
	}
	return "points at " + short(s)
}

// conflicts are the objects of the plans the destination holds with
// other bytes under a name that belongs to this release alone: cache
// paths, the version directory, the version's image tag, the git tag.
// Names that move from release to release (latest, the major's tag, the
// root manifest.nix, the docs, the branch) change as an upload changes them.
func (r *run) conflicts(plans []*plan.Plan) []string {
	var out []string
	for _, pl := range plans {
		if pl.Skipped != "" {
			continue
		}
		if cp, ok := pl.State.(*binarycache.CopyPlan); ok {
			out = append(out, cp.Conflicts...)
			continue
		}
		for _, o := range pl.Objects {
			if o.Why != plan.Changed {
				continue
			}
			switch {
			case pl.Stage == "releases",
				pl.Stage == "images" && o.Kind == plan.KindIndex && o.Key == r.rec.Version,
				pl.Stage == "git" && o.Key == "refs/tags/"+r.rec.Version:
				out = append(out, fmt.Sprintf("%s %s (%s)", o.Dest, o.Key, o.Detail))
			}
		}
	}
	return out
}
