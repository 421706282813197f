package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/runctx"
)

// This file is the one description of how the bucket stages (releases,
// docs, manifest) plan, send and read back files of release/.

// fileObject is a file of release/ to publish under key.
type fileObject struct {
	key  string
	file artifacts.File
}

// objectChecks bounds the HEAD requests of a plan in flight.
const objectChecks = 16

// planFiles asks b about every file: present (same size and checksum),
// changed, or new. With mirror set, it lists the prefix once instead (with
// checksums) and plans to delete what is there but not among files.
func (r *run) planFiles(ctx context.Context, pl *plan.Plan, b bucket.Bucket, files []fileObject, mirror string) error {
	objs := make([]plan.Object, len(files))
	for i, f := range files {
		objs[i] = plan.Object{Dest: b.String(), Key: f.key, Kind: plan.KindFile, Size: f.file.Size, Digest: "sha256:" + f.file.SHA256,
			Source: filepath.Join(r.p.ReleaseDir(), filepath.FromSlash(f.file.Path))}
	}
	decide := func(o *plan.Object, info bucket.ObjectInfo, found bool) {
		switch {
		case !found:
			o.Why = plan.New
		case bucket.SameObject(info, o.Size, strings.TrimPrefix(o.Digest, "sha256:")):
			o.Why = plan.Present
		default:
			o.Why = plan.Changed
			o.Detail = fmt.Sprintf("the destination has %d bytes, sha256 %s", info.Size, orUnknown(info.SHA256))
		}
	}
	if mirror != "" {
		listed, err := b.List(ctx, mirror, bucket.ListOptions{Recursive: true, SHA256: true})
		if err != nil && !errors.Is(err, bucket.ErrNotFound) {
			return err
		}
		have := map[string]bucket.ObjectInfo{}
		for _, o := range listed {
			if !o.IsPrefix {
				have[o.Key] = o
			}
		}
		want := map[string]bool{}
		for i := range objs {
			info, ok := have[objs[i].Key]
			decide(&objs[i], info, ok)
			want[objs[i].Key] = true
		}
		pl.Objects = append(pl.Objects, objs...)
		for _, o := range listed {
			if !o.IsPrefix && !want[o.Key] {
				pl.Add(plan.Object{Dest: b.String(), Key: o.Key, Kind: plan.KindFile, Size: o.Size, Why: plan.Delete, Detail: "no longer in the manual"})
			}
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.rc.JobsOr(objectChecks))
	for i := range objs {
		g.Go(func() error {
			info, err := b.Stat(gctx, objs[i].Key)
			if err != nil && !errors.Is(err, bucket.ErrNotFound) {
				return err
			}
			decide(&objs[i], info, err == nil)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	pl.Objects = append(pl.Objects, objs...)
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// runFiles executes a bucket stage's plan: each object to send is checked
// once more and sent, each object to delete deleted; both journaled.
// Several objects are in flight (SPEC §10.3): up to the run's jobs
// (default objectChecks), within a memory budget — a single PUT buffers
// its body, a multipart upload its parts in flight — so that memory stays
// bounded by the budget, not by the files' sizes.
func (r *run) runFiles(ctx context.Context, pl *plan.Plan, b bucket.Bucket) (Published, error) {
	var (
		mu  sync.Mutex
		pub Published
	)
	budget := semaphore.NewWeighted(sendBudget)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.rc.JobsOr(objectChecks))
	stopped := false
	for _, o := range pl.Objects {
		if stopped = runctx.Stopping(ctx); stopped {
			break // asked to stop: what is in flight finishes
		}
		if !o.Sends() && o.Why != plan.Delete {
			mu.Lock()
			pub.Objects++
			mu.Unlock()
			continue
		}
		g.Go(func() error {
			if o.Why == plan.Delete {
				if err := b.Delete(gctx, o.Key); err != nil {
					return err
				}
				if err := r.j.Append(journal.Entry{Kind: "deleted", Step: pl.Stage, Key: bucket.ObjectURL(b, o.Key)}); err != nil {
					return err
				}
				mu.Lock()
				pub.Deleted++
				mu.Unlock()
				return nil
			}
			w := sendWeight(o.Size)
			if err := budget.Acquire(gctx, w); err != nil {
				return err
			}
			defer budget.Release(w)
			sent, err := r.putFile(gctx, pl.Stage, b, o)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			pub.Objects++
			if sent {
				pub.Sent++
				pub.Bytes += o.Size
				r.rc.Emit(runctx.Event{Kind: runctx.Object, Stage: pl.Stage, Object: bucket.ObjectURL(b, o.Key), Bytes: o.Size})
			}
			return nil
		})
	}
	err := g.Wait()
	if err == nil && stopped {
		err = runctx.ErrInterrupted
	}
	if err == nil {
		r.removeLeftovers(ctx, pl, b)
	}
	return pub, err
}

// removeLeftovers removes, once a stage has sent its whole plan, what
// interrupted runs left in b for the plan's keys (bucket.Cleaner): S3
// multipart uploads nobody will complete, a directory's temporary files.
// Under the environment's lock no other releng writes those keys, so all
// are removed, whenever they were started. A failure (credentials that
// may not list multipart uploads) is a warning: what was published stands.
func (r *run) removeLeftovers(ctx context.Context, pl *plan.Plan, b bucket.Bucket) {
	objs := make([]bucket.ObjectInfo, 0, len(pl.Objects))
	for _, o := range pl.Objects {
		// An interrupted run leaves its leftovers under keys it had not
		// finished, which this plan sends again (or whose upload the
		// journal still holds); a stage that sends nothing asks nothing.
		if _, inJournal := r.j.Upload(bucket.ObjectURL(b, o.Key)); o.Sends() || inJournal {
			objs = append(objs, bucket.ObjectInfo{Key: o.Key, Size: o.Size})
		}
	}
	removed, err := bucket.RemoveLeftovers(ctx, b, objs, time.Time{})
	for _, l := range removed {
		r.rc.Infof(pl.Stage, "removed %s left by an interrupted run", bucket.ObjectURL(b, l.Key)+leftoverWhat(l))
	}
	if err != nil {
		r.rc.Warnf(pl.Stage, "could not remove what interrupted runs left in %s: %v", b, err)
	}
}

// leftoverWhat says what kind of leftover l is, after its URL.
func leftoverWhat(l bucket.Leftover) string {
	if l.UploadID != "" {
		return " (multipart upload " + l.UploadID + ")"
	}
	return " (temporary file)"
}

// sendBudget bounds the bytes the bucket stages buffer at once.
const sendBudget = 128 << 20

// sendWeight is what sending an object of size takes from sendBudget: its
// body for a single PUT, or half the budget for a multipart upload (its
// parts in flight), so that at most two go at once.
func sendWeight(size int64) int64 {
	if size >= resumableThreshold {
		return sendBudget / 2
	}
	return max(size, 4<<10)
}

// resumableThreshold is the size from which files go up in resumable parts.
const resumableThreshold = 64 << 20

// putFile sends one planned object unless the destination has it by now
// (same size and checksum); it journals the object, and the parts of a
// large upload so that an interrupted one resumes.
func (r *run) putFile(ctx context.Context, step string, b bucket.Bucket, o plan.Object) (bool, error) {
	url := bucket.ObjectURL(b, o.Key)
	sum := strings.TrimPrefix(o.Digest, "sha256:")
	entry := journal.Entry{Kind: "object", Step: step, Key: url, Size: o.Size, SHA256: sum}
	if info, err := b.Stat(ctx, o.Key); err == nil && bucket.SameObject(info, o.Size, sum) {
		entry.Note = "already there"
		if state, ok := r.j.Upload(url); ok && state.ID != "" {
			// Completed by another path (an earlier run that stopped
			// before journaling it): the journaled upload is abandoned.
			// A failure is left to the stage's removeLeftovers.
			_ = b.AbortUpload(ctx, o.Key, state.ID)
		}
		return false, r.j.Append(entry)
	} else if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		return false, err
	}
	popts := bucket.PutOptions{ContentType: contentType(o.Key), SHA256: sum}
	if _, signed := r.bodies[url]; r.from != nil && !signed && o.Size < resumableThreshold {
		if err := r.copyObject(ctx, step, b, o, popts); err != nil {
			return false, err
		}
		return true, r.j.Append(entry)
	}
	fh, err := r.openSource(ctx, step, o, url)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if o.Size >= resumableThreshold {
		state, _ := r.j.Upload(url)
		if state.SHA256 != "" && state.SHA256 != sum {
			state = bucket.UploadState{}
		}
		_, err = b.PutResumable(ctx, o.Key, fh, o.Size, bucket.ResumableOptions{
			PutOptions: popts,
			State:      state,
			OnStart: func(s bucket.UploadState) error {
				state = s
				return r.j.Append(journal.Entry{Kind: "upload", Key: url, Upload: &s})
			},
			OnPart: func(part bucket.Part) error {
				state.Parts = append(state.Parts, part)
				s := state
				return r.j.Append(journal.Entry{Kind: "upload", Key: url, Upload: &s})
			},
		})
	} else {
		_, err = b.Put(ctx, o.Key, fh, o.Size, popts)
	}
	if err != nil {
		return false, err
	}
	return true, r.j.Append(entry)
}

// verifyFiles reads back every object of a bucket stage's plan: each file
// must have the planned size and checksum; each deleted one must be gone.
func verifyFiles(ctx context.Context, b bucket.Bucket, pl *plan.Plan) []Check {
	checks := make([]Check, len(pl.Objects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(objectChecks)
	for i, o := range pl.Objects {
		g.Go(func() error {
			checks[i] = checkObject(gctx, pl.Stage, b, o)
			return nil
		})
	}
	g.Wait()
	return checks
}

func checkObject(ctx context.Context, what string, b bucket.Bucket, o plan.Object) Check {
	c := Check{What: what, Object: bucket.ObjectURL(b, o.Key)}
	if o.Why == plan.Delete {
		_, err := b.Stat(ctx, o.Key)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
			c.OK, c.Detail = true, "deleted (no longer published)"
		case err != nil:
			c.Detail = err.Error()
		default:
			c.Detail = "still there, but no longer part of the release: run `releng upload` again"
		}
		return c
	}
	rc, err := b.Get(ctx, o.Key)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	switch {
	case n != o.Size:
		c.Detail = fmt.Sprintf("size %d, build.json says %d", n, o.Size)
	case sum != o.Digest:
		c.Detail = fmt.Sprintf("%s, build.json says %s", sum, o.Digest)
	default:
		c.OK = true
	}
	return c
}

func contentType(key string) string {
	base := path.Base(key)
	switch {
	case strings.HasSuffix(base, ".tar.gz"), strings.HasSuffix(base, ".tgz"):
		return "application/gzip"
	case strings.HasSuffix(base, ".nix"), strings.HasSuffix(base, ".sha256"), base == "SHA256SUMS":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(base)); t != "" {
		return t
	}
	return "application/octet-stream"
}
