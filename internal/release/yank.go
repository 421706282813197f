package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/version"
	"github.com/releng-project/releng/internal/versionfile"
)

// YankOptions are the flags of `releng yank`.
type YankOptions struct {
	Version, Environment, Reason string
	// Undo restores what the yank moved and removes yanked.json.
	Undo             bool
	DryRun           bool
	NoConfirm        bool
	AllowInsecureKey bool
	Run              *runctx.Run
}

// YankRecord is yanked.json, written into the version directory of a
// yanked release (and signed like SHA256SUMS when the environment has a
// release_key). Moved records what the yank pointed elsewhere, so that
// an interrupted yank finishes the same moves and --undo restores them.
type YankRecord struct {
	Version       string `json:"version"`
	Reason        string `json:"reason"`
	Time          string `json:"time"`
	RelengVersion string `json:"releng_version"`
	Moved         []Move `json:"moved"`
}

// Move is one moving pointer a yank pointed from the yanked version To
// another release: the root manifest.nix, an image tag, the stable manual.
type Move struct {
	What  string `json:"what"`  // "manifest", "tag" or "docs"
	Where string `json:"where"` // the key, HOST/REPO:TAG, or the docs prefix
	To    string `json:"to"`
}

// YankReport is the result of a yank (or its undo).
type YankReport struct {
	Environment string       `json:"environment"`
	Version     string       `json:"version"`
	Undo        bool         `json:"undo"`
	DryRun      bool         `json:"dry_run"`
	Record      *YankRecord  `json:"record"`
	Notes       []string     `json:"notes,omitempty"`
	Plans       []*plan.Plan `json:"plans"`
	Steps       []Published  `json:"steps"`
}

// yankRun is what the steps of one yank share.
type yankRun struct {
	rc        *runctx.Run
	p         *project.Project
	t         *Target
	opts      YankOptions
	name      string
	rec       *YankRecord
	have      bool // yanked.json is in the bucket
	key       *signing.PrivateKey
	j         *journal.Journal
	manifests map[string][]byte            // the manifest.nix of each version read
	root      []byte                       // the root manifest.nix (empty: none; nil: not read yet)
	bodies    map[string][]byte            // what a step writes, by key
	sources   map[string]bucket.ObjectInfo // the docs object each stable key is copied from
}

// readYanked reads the yanked.json of ver in t's releases bucket; nil
// when there is none (or no releases bucket).
func readYanked(ctx context.Context, t *Target, name, ver string) (*YankRecord, error) {
	if t.Releases == nil {
		return nil, nil
	}
	key := yankedKey(name, ver)
	data, err := binarycache.FetchBody(ctx, t.Releases, key, fsutil.MaxSmallState)
	if errors.Is(err, bucket.ErrNotFound) || errors.Is(err, bucket.ErrForbidden) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec YankRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Version != ver {
		return nil, fmt.Errorf("%s is not a yanked.json releng wrote for %s (%v): move it away, or yank again", bucket.ObjectURL(t.Releases, key), ver, err)
	}
	return &rec, nil
}

// yankedKey is the key of a version's yanked.json.
func yankedKey(name, ver string) string { return name + "/" + name + "-" + ver + "/yanked.json" }

// Yank withdraws a published release from an environment (SPEC §11.2)
// without deleting what users may have pinned: it writes a signed
// yanked.json into the version directory, then points the root
// manifest.nix, the moving image tags (latest, the major's) and the
// stable manual that name VERSION at the newest published, non-yanked
// stable release (of the same major, for the major's tag). The cache, the
// version directory and VERSION's own tag stay. Undo moves back what
// yanked.json records, then removes it. Planned, locked, confirmed and
// journaled like upload; a re-run finishes an interrupted one.
func Yank(ctx context.Context, p *project.Project, opts YankOptions) (*YankReport, error) {
	if err := versionfile.ValidateTag(opts.Version); err != nil {
		return nil, &config.Error{Msg: fmt.Sprintf("yank %q: %v", opts.Version, err)}
	}
	if !opts.Undo && strings.TrimSpace(opts.Reason) == "" {
		return nil, &config.Error{Msg: "yank needs --reason TEXT: it is written into yanked.json for users to read"}
	}
	y := &yankRun{rc: opts.Run, p: p, opts: opts, name: p.Config.Name, manifests: map[string][]byte{}, bodies: map[string][]byte{}, sources: map[string]bucket.ObjectInfo{}}
	var err error
	if y.t, err = OpenTarget(ctx, p, opts.Environment, TargetOptions{NeedCredentials: true, Retry: y.rc.RetryPolicy()}); err != nil {
		return nil, err
	}
	if y.t.Releases == nil {
		return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environment %s has no releases bucket: yank writes yanked.json there", y.t.Env.Name)}
	}
	if y.key, err = y.t.ReleaseKey(p, opts.AllowInsecureKey); err != nil {
		return nil, err
	}
	rep := &YankReport{Environment: y.t.Env.Name, Version: opts.Version, Undo: opts.Undo, DryRun: opts.DryRun}
	unlock := func() {}
	if !opts.DryRun {
		lock, err := journal.Acquire(filepath.Join(p.StateDir(), y.t.Env.Name+".lock"), "yank")
		if err != nil {
			return nil, err
		}
		unlock = func() { lock.Release() }
	}
	defer unlock()
	if err := y.decide(ctx, rep); err != nil {
		return nil, err
	}
	rep.Record = y.rec
	if rep.Plans, err = y.plans(ctx); err != nil {
		return nil, err
	}
	for _, n := range rep.Notes {
		y.rc.Infof("yank", "%s", n)
	}
	if opts.DryRun {
		return rep, nil
	}
	env := y.t.Env
	if *env.Confirm && !opts.NoConfirm {
		phrase := "I want to yank " + opts.Version + " from " + env.Name
		if opts.Undo {
			phrase = "I want to unyank " + opts.Version + " in " + env.Name
		}
		if y.rc == nil || y.rc.Confirm == nil {
			return nil, fmt.Errorf("environment %s needs confirmation and there is nobody to ask; pass --noconfirm", env.Name)
		}
		if err := y.rc.Confirm(env.Name, phrase); err != nil {
			return nil, err
		}
	}
	if y.j, err = journal.Open(filepath.Join(p.StateDir(), env.Name+".journal"), "yank "+y.name+" "+opts.Version); err != nil {
		return nil, err
	}
	defer y.j.Close()
	for _, pl := range rep.Plans {
		if runctx.Stopping(ctx) {
			return rep, runctx.ErrInterrupted
		}
		pub, err := y.run(ctx, pl)
		pub.Step, pub.Where = pl.Stage, pl.Dest
		if errors.Is(err, runctx.ErrInterrupted) {
			return rep, err
		}
		if err != nil {
			return rep, fmt.Errorf("yank of %s in %s stopped at step %s: %w; run the same command again to finish it", opts.Version, env.Name, pl.Stage, err)
		}
		rep.Steps = append(rep.Steps, pub)
	}
	return rep, nil
}

// published is a version directory of the releases bucket.
type published struct {
	ver    string
	v      version.PEP440
	yanked bool
}

// decide reads what the bucket holds and decides the moves: those
// yanked.json records (a yank under way, or an undo), or — for a new
// yank — every pointer that names VERSION.
func (y *yankRun) decide(ctx context.Context, rep *YankReport) error {
	b, env, ver := y.t.Releases, y.t.Env.Name, y.opts.Version
	all, err := PublishedVersions(ctx, y.p, y.t)
	if err != nil {
		return err
	}
	if !slices.Contains(all, ver) {
		return &NotPublishedError{Env: env, Version: ver, URL: bucket.ObjectURL(b, VersionManifestKey(y.name, ver)), Published: all}
	}
	rec, err := readYanked(ctx, y.t, y.name, ver)
	if err != nil {
		return err
	}
	if rec != nil {
		y.rec, y.have = rec, true
		if !y.opts.Undo {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s was yanked at %s (%s): finishing the moves yanked.json records", ver, rec.Time, rec.Reason))
		}
		return nil
	}
	if y.opts.Undo {
		return fmt.Errorf("%s is not yanked in %s (%s does not exist): nothing to undo", ver, env, bucket.ObjectURL(b, yankedKey(y.name, ver)))
	}
	// The candidates: published, not yanked, not pre-releases, newest first.
	var cands []published
	for _, s := range all {
		v, _ := version.Parse(s)
		if s == ver || v.IsPrerelease() {
			continue
		}
		if ok, err := bucket.Exists(ctx, b, yankedKey(y.name, s), true); err != nil {
			return err
		} else if ok {
			continue
		}
		cands = append(cands, published{ver: s, v: v})
	}
	slices.Reverse(cands)
	major, _ := version.Major(ver)
	newest := func(sameMajor bool) string {
		for _, c := range cands {
			if m, _ := version.Major(c.ver); !sameMajor || m == major {
				return c.ver
			}
		}
		return ""
	}
	y.rec = &YankRecord{Version: ver, Reason: y.opts.Reason, Time: time.Now().UTC().Format(time.RFC3339), RelengVersion: y.rc.RelengVersion(), Moved: []Move{}}
	var stuck []string
	move := func(what, where, to, pointer string) {
		if to == "" {
			stuck = append(stuck, pointer)
			return
		}
		y.rec.Moved = append(y.rec.Moved, Move{What: what, Where: where, To: to})
	}
	// The root manifest.nix.
	if names, err := y.manifestNames(ctx, ver); err != nil {
		return err
	} else if names {
		to := newest(false)
		if to != "" {
			if err := y.checkClosure(ctx, to); err != nil {
				return err
			}
		}
		move("manifest", "manifest.nix", to, bucket.ObjectURL(b, "manifest.nix"))
	}
	// The moving image tags.
	tags, err := y.movingTags(ctx)
	if err != nil {
		return err
	}
	for _, mt := range tags {
		to := newest(mt.major)
		if to == "" && mt.major {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s stays: no other stable release of %s is published", mt.ref, major))
			continue
		}
		move("tag", mt.ref, to, mt.ref)
	}
	// The stable manual.
	if y.t.Docs != nil {
		stable := manualPrefix(y.name, "stable")
		if names, err := y.docsName(ctx, stable, major); err != nil {
			return err
		} else if names {
			to := newest(false)
			if m, _ := version.Major(to); to != "" && m == major {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s stays: %s's manual is no longer published (manual/%s/%s/ holds %s's)", bucket.ObjectURL(y.t.Docs, stable), to, y.name, major, ver))
			} else {
				move("docs", stable, to, bucket.ObjectURL(y.t.Docs, stable))
			}
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("%s is the only stable release of %s published to %s that %s could point at; nothing was changed. Publish a fixed release instead (upload moves them)", ver, y.name, env, strings.Join(stuck, ", "))
	}
	if len(y.rec.Moved) == 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("nothing published to %s points at %s (a pre-release, a maintenance release, or moved on since): only yanked.json is written", env, ver))
	}
	return nil
}

// manifestOf reads the manifest.nix of a version's directory (once).
func (y *yankRun) manifestOf(ctx context.Context, ver string) ([]byte, error) {
	if b, ok := y.manifests[ver]; ok {
		return b, nil
	}
	b, err := binarycache.FetchBody(ctx, y.t.Releases, VersionManifestKey(y.name, ver), fsutil.MaxManifestNix)
	if err == nil {
		y.manifests[ver] = b
	}
	return b, err
}

// manifestNames reports whether the root manifest.nix is ver's. The root
// manifest.nix is read once per run: nothing moves it while the run holds
// the environment's lock, before its steps run.
func (y *yankRun) manifestNames(ctx context.Context, ver string) (bool, error) {
	if y.root == nil {
		root, err := binarycache.FetchBody(ctx, y.t.Releases, "manifest.nix", fsutil.MaxManifestNix)
		if errors.Is(err, bucket.ErrNotFound) {
			root = []byte{}
		} else if err != nil {
			return false, err
		}
		y.root = root
	}
	if len(y.root) == 0 {
		return false, nil
	}
	root := y.root
	mine, err := y.manifestOf(ctx, ver)
	if err != nil {
		return false, err
	}
	return bytes.Equal(root, mine), nil
}

// checkClosure checks that the cache holds the closure of ver's
// manifest.nix, signed, before the root manifest.nix names it.
func (y *yankRun) checkClosure(ctx context.Context, ver string) error {
	if y.t.Cache == nil {
		return nil
	}
	roots, err := PublishedRoots(ctx, y.p, y.t, ver)
	if err != nil {
		return err
	}
	keys, err := y.t.VerifyKeys(y.p)
	if err != nil {
		return err
	}
	if _, err := binarycache.ReadClosure(ctx, y.t.Cache, keys, roots, 32); err != nil {
		return fmt.Errorf("the root manifest.nix cannot point back at %s: %w", ver, err)
	}
	return nil
}

// movingTag is an image tag other than the version's own.
type movingTag struct {
	ref   string // HOST/REPO:TAG (or oci:DIR:TAG)
	major bool   // the major's tag: moves within the major
}

// versionVars are the template variables of another version than the
// checkout's.
func (y *yankRun) versionVars(ver string) map[string]string {
	vars := y.p.Vars()
	vars["version"], vars["env"] = ver, y.t.Env.Name
	vars["major"], _ = version.Major(ver)
	return vars
}

// movingTags are the tags of every image target that name the version's
// index but are not the version's own tag: latest and the major's.
func (y *yankRun) movingTags(ctx context.Context) ([]movingTag, error) {
	ver := y.opts.Version
	var out []movingTag
	for i, it := range y.t.Env.Images {
		d, err := registry.ParseDest(it.Repository, y.p.Root)
		if err != nil {
			return nil, &config.Error{File: y.p.Config.Path, Msg: fmt.Sprintf("environments.%s.images[%d].repository: %v", y.t.Env.Name, i, err)}
		}
		t, err := registry.Open(ctx, d.String(), registry.Options{Insecure: it.Insecure, UserAgent: y.rc.UserAgent(), ReadOnly: true})
		if err != nil {
			return nil, err
		}
		own, found, err := t.Resolve(ctx, ver)
		if err != nil || !found {
			if err == nil {
				y.rc.Infof("yank", "%s has no tag %s: no image tag to move there", d, ver)
			}
			continue
		}
		tags := map[string]bool{"latest": false}
		for _, tt := range it.Tags {
			tag, err := config.Expand(tt, y.versionVars(ver))
			if err != nil {
				return nil, err
			}
			if tag != ver {
				tags[tag] = strings.Contains(tt, "{major}")
			}
		}
		for _, tag := range slices.Sorted(maps.Keys(tags)) {
			now, found, err := t.Resolve(ctx, tag)
			if err != nil {
				return nil, err
			}
			if found && now.Digest == own.Digest {
				out = append(out, movingTag{ref: d.String() + ":" + tag, major: tags[tag]})
			}
		}
	}
	return out, nil
}

// docsName reports whether prefix mirrors manual/NAME/MAJOR/ exactly.
func (y *yankRun) docsName(ctx context.Context, prefix, major string) (bool, error) {
	a, err := y.listing(ctx, prefix)
	if err != nil {
		return false, err
	}
	b, err := y.listing(ctx, manualPrefix(y.name, major))
	if err != nil {
		return false, err
	}
	return len(a) > 0 && maps.EqualFunc(a, b, func(x, y bucket.ObjectInfo) bool { return x.SHA256 == y.SHA256 && x.Size == y.Size }), nil
}

// listing maps the keys below prefix (relative to it) to what they are.
func (y *yankRun) listing(ctx context.Context, prefix string) (map[string]bucket.ObjectInfo, error) {
	objs, err := y.t.Docs.List(ctx, prefix, bucket.ListOptions{Recursive: true, SHA256: true})
	if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		return nil, err
	}
	out := map[string]bucket.ObjectInfo{}
	for _, o := range objs {
		if !o.IsPrefix {
			out[strings.TrimPrefix(o.Key, prefix)] = o
		}
	}
	return out, nil
}

// ends are where a move points from and to: a yank moves pointers from
// VERSION to the replacement, an undo back.
func (y *yankRun) ends(m Move) (from, to string) {
	if y.opts.Undo {
		return m.To, y.opts.Version
	}
	return y.opts.Version, m.To
}

// plans are the steps in order: yanked.json first (it records the
// moves), then each kind of pointer; an undo removes yanked.json last.
func (y *yankRun) plans(ctx context.Context) ([]*plan.Plan, error) {
	rec, err := y.recordPlan(ctx)
	if err != nil {
		return nil, err
	}
	out := []*plan.Plan{}
	if !y.opts.Undo {
		out = append(out, rec)
	}
	for _, what := range []string{"manifest", "tag", "docs"} {
		pl := &plan.Plan{Stage: map[string]string{"manifest": "manifest", "tag": "images", "docs": "docs"}[what]}
		for _, m := range y.rec.Moved {
			if m.What != what {
				continue
			}
			if err := y.planMove(ctx, pl, m); err != nil {
				return nil, err
			}
		}
		if len(pl.Objects) > 0 {
			out = append(out, pl)
		}
	}
	if y.opts.Undo {
		out = append(out, rec)
	}
	return out, nil
}

// recordPlan is yanked.json and its signature: written by a yank (present
// when the bucket has it), deleted by an undo.
func (y *yankRun) recordPlan(ctx context.Context) (*plan.Plan, error) {
	b := y.t.Releases
	pl := &plan.Plan{Stage: "yanked", Dest: b.String()}
	key := yankedKey(y.name, y.opts.Version)
	body, err := json.MarshalIndent(y.rec, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	objs := []plan.Object{{Dest: b.String(), Key: key, Kind: plan.KindFile, Size: int64(len(body)), Digest: oci.Digest(body), Detail: y.rec.Reason}}
	if y.key != nil {
		sig := y.key.Sign(signing.NamespaceFile, body)
		objs = append(objs, plan.Object{Dest: b.String(), Key: key + ".sig", Kind: plan.KindFile, Size: int64(len(sig)), Digest: oci.Digest(sig), Detail: "SSH signature by " + y.key.Public().Fingerprint()})
		y.bodies[key+".sig"] = sig
	}
	y.bodies[key] = body
	for _, o := range objs {
		_, err := b.Stat(ctx, o.Key)
		exists := err == nil
		if err != nil && !errors.Is(err, bucket.ErrNotFound) {
			return nil, err
		}
		switch {
		case y.opts.Undo && exists:
			o.Why = plan.Delete
		case y.opts.Undo:
			continue
		case y.have || exists:
			o.Why = plan.Present
		default:
			o.Why = plan.New
		}
		pl.Add(o)
	}
	return pl, nil
}

// planMove adds what moving one pointer sends; a pointer that names
// neither end (moved on since) is left alone, and the plan says so.
func (y *yankRun) planMove(ctx context.Context, pl *plan.Plan, m Move) error {
	from, to := y.ends(m)
	switch m.What {
	case "manifest":
		b := y.t.Releases
		pl.Dest = b.String()
		body, err := y.manifestOf(ctx, to)
		if err != nil {
			return fmt.Errorf("the manifest.nix of %s: %w", to, err)
		}
		y.bodies["manifest.nix"] = body
		o := plan.Object{Dest: b.String(), Key: "manifest.nix", Kind: plan.KindFile, Size: int64(len(body)), Digest: oci.Digest(body), Source: bucket.ObjectURL(b, VersionManifestKey(y.name, to)), Why: plan.Present, Detail: "names " + to}
		if names, err := y.manifestNames(ctx, to); err != nil {
			return err
		} else if !names {
			o.Why = plan.Changed
			if was, err := y.manifestNames(ctx, from); err != nil {
				return err
			} else if !was && y.opts.Undo {
				o.Why, o.Detail = plan.Present, "names neither "+from+" nor "+to+" (moved on since): left alone"
			}
		}
		pl.Add(o)
	case "tag":
		ref := m.Where
		i := strings.LastIndexByte(ref, ':')
		dest, tag := ref[:i], ref[i+1:]
		pl.Dest = dest
		t, err := registry.Open(ctx, dest, registry.Options{Insecure: y.insecure(dest), UserAgent: y.rc.UserAgent()})
		if err != nil {
			return err
		}
		want, found, err := t.Resolve(ctx, to)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%s has no tag %s to point %s at", dest, to, tag)
		}
		now, _, err := t.Resolve(ctx, tag)
		if err != nil {
			return err
		}
		o := plan.Object{Dest: dest, Key: tag, Kind: plan.KindIndex, Size: want.Size, Digest: want.Digest, Source: dest + ":" + to, Why: plan.Present, Detail: "names " + to}
		if now.Digest != want.Digest {
			o.Why = plan.Changed
			if fromDesc, _, err := t.Resolve(ctx, from); err == nil && y.opts.Undo && now.Digest != fromDesc.Digest {
				o.Why, o.Detail = plan.Present, "names neither "+from+" nor "+to+" (moved on since): left alone"
			}
		}
		pl.Add(o)
	case "docs":
		b := y.t.Docs
		pl.Dest = b.String()
		major, _ := version.Major(to)
		src := manualPrefix(y.name, major)
		want, err := y.listing(ctx, src)
		if err != nil {
			return err
		}
		if len(want) == 0 {
			return fmt.Errorf("%s is empty: the manual of %s is not published, the stable manual cannot point at it", bucket.ObjectURL(b, src), to)
		}
		have, err := y.listing(ctx, m.Where)
		if err != nil {
			return err
		}
		for _, rel := range slices.Sorted(maps.Keys(want)) {
			w := want[rel]
			o := plan.Object{Dest: b.String(), Key: m.Where + rel, Kind: plan.KindFile, Size: w.Size, Digest: "sha256:" + w.SHA256, Source: bucket.ObjectURL(b, w.Key), Why: plan.Present}
			if h, ok := have[rel]; !ok {
				o.Why = plan.New
			} else if h.SHA256 != w.SHA256 || h.Size != w.Size {
				o.Why = plan.Changed
			}
			y.sources[o.Key] = w
			pl.Add(o)
		}
		for _, rel := range slices.Sorted(maps.Keys(have)) {
			if _, ok := want[rel]; !ok {
				pl.Add(plan.Object{Dest: b.String(), Key: m.Where + rel, Kind: plan.KindFile, Size: -1, Why: plan.Delete, Detail: "not in the manual of " + to})
			}
		}
	}
	return nil
}

// insecure says whether the image target at dest allows plain HTTP.
func (y *yankRun) insecure(dest string) bool {
	for _, it := range y.t.Env.Images {
		if d, err := registry.ParseDest(it.Repository, y.p.Root); err == nil && d.String() == dest {
			return it.Insecure
		}
	}
	return false
}

// run executes one step's plan, journaling each object.
func (y *yankRun) run(ctx context.Context, pl *plan.Plan) (Published, error) {
	var pub Published
	for _, o := range pl.Objects {
		pub.Objects++
		if !o.Sends() && o.Why != plan.Delete {
			continue
		}
		if runctx.Stopping(ctx) {
			return pub, runctx.ErrInterrupted
		}
		if err := y.send(ctx, pl, o); err != nil {
			return pub, err
		}
		if o.Why == plan.Delete {
			pub.Deleted++
		} else {
			pub.Sent++
			pub.Bytes += max(o.Size, 0)
		}
		y.rc.Emit(runctx.Event{Kind: runctx.Object, Stage: pl.Stage, Object: o.Dest + " " + o.Key, Bytes: max(o.Size, 0)})
		if err := y.j.Append(journal.Entry{Kind: "object", Step: "yank " + pl.Stage, Key: o.Dest + " " + o.Key, Note: string(o.Why)}); err != nil {
			return pub, err
		}
	}
	return pub, nil
}

func (y *yankRun) send(ctx context.Context, pl *plan.Plan, o plan.Object) error {
	switch pl.Stage {
	case "yanked", "manifest":
		b := y.t.Releases
		if o.Why == plan.Delete {
			return b.Delete(ctx, o.Key)
		}
		body := y.bodies[o.Key]
		_, err := b.Put(ctx, o.Key, bytes.NewReader(body), int64(len(body)), bucket.PutOptions{ContentType: contentType(o.Key)})
		return err
	case "images":
		t, err := registry.Open(ctx, o.Dest, registry.Options{Insecure: y.insecure(o.Dest), UserAgent: y.rc.UserAgent()})
		if err != nil {
			return err
		}
		desc, body, err := t.Manifest(ctx, o.Digest)
		if err != nil {
			return err
		}
		if oci.Digest(body) != o.Digest {
			return fmt.Errorf("%s@%s read back with digest %s", o.Dest, o.Digest, oci.Digest(body))
		}
		return t.PutManifest(ctx, o.Key, desc.MediaType, body)
	case "docs":
		b := y.t.Docs
		if o.Why == plan.Delete {
			return b.Delete(ctx, o.Key)
		}
		src := y.sources[o.Key]
		body := bucket.Reopen(func() (io.ReadCloser, error) { return b.Get(ctx, src.Key) })
		defer body.Close()
		_, err := b.Put(ctx, o.Key, body, src.Size, bucket.PutOptions{ContentType: contentType(o.Key), SHA256: src.SHA256})
		return err
	}
	return fmt.Errorf("yank: unknown step %s", pl.Stage)
}
