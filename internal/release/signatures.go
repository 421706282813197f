package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/signing"
)

// This file is how the stages sign (SPEC §11.1): SHA256SUMS.sig in the
// releases stage's plan, a cosign signature per pushed index in the images
// stage's plan, the release tag's signature checked by the git stage. A
// signature is "present" when the destination holds one that verifies
// with the environment's public key, so upload, --dry-run and verify (which
// has no private key) decide alike; ed25519 being deterministic, what
// upload would send is then byte-identical to what is there.

// releaseKeys are an environment's release keys for one run.
type releaseKeys struct {
	// pub checks signatures; nil when the environment signs nothing.
	pub *signing.PublicKey
	// priv signs; loaded by upload only.
	priv *signing.PrivateKey
}

// ReleasePublicKey returns the environment's release public key: its
// release_public_key, or the public half of its release_key; nil when it
// has neither (its releases are not signed).
func (t *Target) ReleasePublicKey(p *project.Project) (*signing.PublicKey, error) {
	env := t.Env
	switch {
	case env.ReleasePublicKey != "":
		k, err := signing.LoadPublicKey(env.ReleasePublicKey, p.Config.Abs)
		if err != nil {
			return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s.release_public_key: %v", env.Name, err)}
		}
		return &k, nil
	case env.ReleaseKey != "":
		k, err := signing.LoadPrivateKeyFile(p.Config.Abs(env.ReleaseKey), true)
		if err != nil {
			return nil, fmt.Errorf("environments.%s: no release_public_key configured and the release_key cannot be read (%w); set release_public_key", env.Name, err)
		}
		pub := k.Public()
		return &pub, nil
	}
	return nil, nil
}

// ReleaseKey loads the environment's release_key, refusing a file group
// or others may read unless allowInsecure, and checks it is the half of
// release_public_key. nil when the environment has no release_key.
func (t *Target) ReleaseKey(p *project.Project, allowInsecure bool) (*signing.PrivateKey, error) {
	env := t.Env
	if env.ReleaseKey == "" {
		if env.ReleasePublicKey != "" {
			return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s has a release_public_key but no release_key: set release_key to the private key file, which signs what upload publishes", env.Name)}
		}
		return nil, nil
	}
	k, err := signing.LoadPrivateKeyFile(p.Config.Abs(env.ReleaseKey), allowInsecure)
	if err != nil {
		return nil, fmt.Errorf("environments.%s.release_key: %w", env.Name, err)
	}
	if env.ReleasePublicKey != "" {
		pub, err := t.ReleasePublicKey(p)
		if err != nil {
			return nil, err
		}
		if !pub.Equal(k.Public()) {
			return nil, &config.Error{File: p.Config.Path, Msg: fmt.Sprintf("environments.%s: release_key %s (%s) is not the private half of release_public_key (%s)", env.Name, k.File, k.Public().Fingerprint(), pub.Fingerprint())}
		}
	}
	return k, nil
}

// loadSigner loads the private release key for an upload, before any
// plan: a key refused stops the run before anything is signed or sent.
func (r *run) loadSigner() error {
	k, err := r.t.ReleaseKey(r.p, r.opts.AllowInsecureKey)
	if err != nil || k == nil {
		return err
	}
	r.keys.priv = k
	pub := k.Public()
	r.keys.pub = &pub
	return nil
}

// sumsSignature is the releases stage's state when it signs.
type sumsSignature struct {
	sumsKey, sigKey string
}

// planSumsSignature adds SHA256SUMS.sig to the releases plan: present when
// the bucket holds a signature of the built SHA256SUMS by the
// environment's key.
func (r *run) planSumsSignature(ctx context.Context, pl *plan.Plan, b bucket.Bucket) error {
	if r.keys.pub == nil {
		return nil
	}
	var sums string
	var sumsFile artifacts.File
	for _, f := range r.rec.Files {
		if f.Path == r.rec.VersionDir+"/SHA256SUMS" {
			sums, sumsFile = f.Path, f
		}
	}
	if sums == "" {
		return fmt.Errorf("release/build.json lists no %s/SHA256SUMS to sign: run `releng build` again", r.rec.VersionDir)
	}
	var content []byte
	var err error
	if r.from != nil && r.from.Releases != nil {
		// promote: the SHA256SUMS the source published, as built.
		key := strings.TrimPrefix(sums, "artifacts/")
		if content, err = getSmall(ctx, r.from.Releases, key, fsutil.MaxChecksums); err != nil {
			return err
		}
		if got := sha256.Sum256(content); hex.EncodeToString(got[:]) != sumsFile.SHA256 {
			return &SourceError{Env: r.from.Env.Name, Version: r.rec.Version, Problems: []string{bucket.ObjectURL(r.from.Releases, key) + ": not the SHA256SUMS build.json records"}}
		}
	} else if content, err = fsutil.ReadFile(filepath.Join(r.p.ReleaseDir(), filepath.FromSlash(sums)), fsutil.MaxChecksums); err != nil {
		return err
	}
	st := &sumsSignature{sumsKey: strings.TrimPrefix(sums, "artifacts/")}
	st.sigKey = st.sumsKey + ".sig"
	pl.State = st
	o := plan.Object{Dest: b.String(), Key: st.sigKey, Kind: plan.KindFile, Size: -1,
		Detail: "SSH signature of SHA256SUMS by " + r.keys.pub.Fingerprint()}
	if r.keys.priv != nil {
		sig := r.keys.priv.Sign(signing.NamespaceFile, content)
		o.Size, o.Digest = int64(len(sig)), oci.Digest(sig)
		r.bodies[bucket.ObjectURL(b, o.Key)] = sig
	}
	have, err := getSmall(ctx, b, st.sigKey, fsutil.MaxSignature)
	switch {
	case errors.Is(err, bucket.ErrNotFound):
		o.Why = plan.New
	case err != nil:
		return err
	default:
		if verr := r.keys.pub.Verify(signing.NamespaceFile, content, have); verr != nil {
			o.Why, o.Detail = plan.Changed, "the bucket's does not verify: "+verr.Error()
		} else {
			o.Why = plan.Present
		}
	}
	pl.Add(o)
	return nil
}

// splitSigned separates the objects checked by signature from the others.
func splitSigned(pl *plan.Plan, signed func(plan.Object) bool) (rest, sigs []plan.Object) {
	for _, o := range pl.Objects {
		if signed(o) {
			sigs = append(sigs, o)
		} else {
			rest = append(rest, o)
		}
	}
	return rest, sigs
}

// verifyReleases reads back the releases plan: the files by checksum,
// SHA256SUMS.sig by verifying it against the published SHA256SUMS.
func (r *run) verifyReleases(ctx context.Context, b bucket.Bucket, pl *plan.Plan) []Check {
	st, _ := pl.State.(*sumsSignature)
	files, sigs := splitSigned(pl, func(o plan.Object) bool { return st != nil && o.Key == st.sigKey })
	checks := verifyFiles(ctx, b, &plan.Plan{Stage: pl.Stage, Objects: files})
	for _, o := range sigs {
		c := Check{What: pl.Stage, Object: bucket.ObjectURL(b, o.Key)}
		sums, err := getSmall(ctx, b, st.sumsKey, fsutil.MaxChecksums)
		var sig []byte
		if err == nil {
			sig, err = getSmall(ctx, b, o.Key, fsutil.MaxSignature)
		}
		if err == nil {
			err = r.keys.pub.Verify(signing.NamespaceFile, sums, sig)
		}
		if err != nil {
			c.Detail = fmt.Sprintf("not a valid signature of %s by %s: %v", bucket.ObjectURL(b, st.sumsKey), r.keys.pub.Fingerprint(), err)
		} else {
			c.OK, c.Detail = true, "signature of SHA256SUMS by "+r.keys.pub.Fingerprint()
		}
		checks = append(checks, c)
	}
	return checks
}

// getSmall reads a whole object of at most limit bytes.
func getSmall(ctx context.Context, b bucket.Bucket, key string, limit int64) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return fsutil.ReadAllLimited(rc, bucket.ObjectURL(b, key), limit)
}

// source is the bytes of an object to send: a file of release/, or a
// body made in memory (a signature).
type source interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

type memSource struct{ *bytes.Reader }

func (memSource) Close() error { return nil }

// openSource opens what putFile sends for the object at url: a body made
// in memory (a signature), the source environment's object (promote: a
// large one through a spool file, so that its upload resumes part-wise
// like upload's), or the file of release/.
func (r *run) openSource(ctx context.Context, step string, o plan.Object, url string) (source, error) {
	if body, ok := r.bodies[url]; ok {
		return memSource{bytes.NewReader(body)}, nil
	}
	if r.from != nil {
		return r.spool(ctx, step, o)
	}
	return os.Open(o.Source)
}

// planImageSignatures adds to the images plan one cosign signature per
// index the plan puts at a destination: present when the destination holds
// a signature of that index by the environment's key.
func (r *run) planImageSignatures(ctx context.Context, pl *plan.Plan, st *imageState) error {
	if r.keys.pub == nil {
		return nil
	}
	insecure := map[string]imagePush{}
	for _, ip := range st.pushes {
		insecure[ip.Dest] = ip
	}
	seen := map[string]bool{}
	var sigs []plan.Object
	for _, o := range pl.Objects {
		if o.Kind != plan.KindIndex || seen[o.Dest+"@"+o.Digest] {
			continue
		}
		seen[o.Dest+"@"+o.Digest] = true
		if o.Digest == "" {
			return fmt.Errorf("%s:%s: the index digest is known only once the layers are built, so it cannot be signed in the plan: run `releng build` again (it fills the layer cache)", o.Dest, o.Key)
		}
		t, err := r.openImageTarget(ctx, insecure[o.Dest], true)
		if err != nil {
			return err
		}
		s := plan.Object{Dest: o.Dest, Key: signing.CosignTag(o.Digest), Kind: plan.KindSignature, Size: -1,
			Detail: "cosign signature of index " + o.Digest + " by " + r.keys.pub.Fingerprint(), Source: o.Digest}
		if r.keys.priv != nil {
			sig, err := r.keys.priv.CosignSign(repositoryOf(t), o.Digest)
			if err != nil {
				return err
			}
			s.Size, s.Digest = int64(len(sig.Manifest)), sig.Digest()
		}
		err = retryRegistry(ctx, func() error { return r.keys.pub.CheckCosign(ctx, t, o.Digest) })
		switch {
		case err == nil:
			s.Why = plan.Present
		case errors.Is(err, signing.ErrNoSignature):
			s.Why = plan.New
		case errors.Is(err, signing.ErrBadSignature):
			s.Why, s.Detail = plan.Changed, s.Detail+"; the one there: "+err.Error()
		default:
			return err
		}
		sigs = append(sigs, s)
	}
	pl.Objects = append(pl.Objects, sigs...)
	return nil
}

// repositoryOf is the docker-reference a signature names: HOST/REPO as
// the registry package normalises it, or oci:DIR.
func repositoryOf(t registry.Target) string {
	if rem, ok := t.(*registry.Remote); ok {
		return rem.Repository()
	}
	return t.String()
}

func (r *run) openImageTarget(ctx context.Context, ip imagePush, readOnly bool) (registry.Target, error) {
	return registry.Open(ctx, ip.Dest, registry.Options{Insecure: ip.Insecure, UserAgent: r.rc.UserAgent(), ReadOnly: readOnly})
}

func retryRegistry(ctx context.Context, f func() error) error {
	return retry.Policy{}.Do(ctx, registry.Transient, func(int) error { return f() }, nil)
}

// pushImageSignatures sends the signatures the images plan sends, once
// the indexes they sign are pushed.
func (r *run) pushImageSignatures(ctx context.Context, pl *plan.Plan, st *imageState, pub *Published) error {
	byDest := map[string]imagePush{}
	for _, ip := range st.pushes {
		byDest[ip.Dest] = ip
	}
	for _, o := range pl.Objects {
		if o.Kind != plan.KindSignature || !o.Sends() {
			continue
		}
		if r.keys.priv == nil {
			return fmt.Errorf("%s needs a signature of %s and this run has no release_key to make it", o.Dest, o.Source)
		}
		t, err := r.openImageTarget(ctx, byDest[o.Dest], false)
		if err != nil {
			return err
		}
		sig, err := r.keys.priv.CosignSign(repositoryOf(t), o.Source)
		if err != nil {
			return err
		}
		if err := retryRegistry(ctx, func() error { return signing.PushCosign(ctx, t, sig) }); err != nil {
			return fmt.Errorf("push the signature of %s: %w", o.Source, err)
		}
		pub.Sent++
		pub.Bytes += int64(len(sig.Manifest) + len(sig.Payload) + len(sig.Config))
		r.rc.Emit(runctx.Event{Kind: runctx.Object, Stage: "images", Object: o.Dest + " " + o.Kind + " " + o.Key, Bytes: int64(len(sig.Manifest))})
		if err := r.j.Append(journal.Entry{Kind: "object", Step: "images", Key: o.Dest + "@" + o.Key, Size: int64(len(sig.Manifest)), SHA256: sig.Digest()}); err != nil {
			return err
		}
	}
	return nil
}

// verifyImageSignatures checks every planned signature at its destination.
func (r *run) verifyImageSignatures(ctx context.Context, sigs []plan.Object, st *imageState) []Check {
	byDest := map[string]imagePush{}
	for _, ip := range st.pushes {
		byDest[ip.Dest] = ip
	}
	var checks []Check
	for _, o := range sigs {
		c := Check{What: "images", Object: o.Dest + " " + o.Kind + " " + o.Key}
		t, err := r.openImageTarget(ctx, byDest[o.Dest], true)
		if err == nil {
			err = retryRegistry(ctx, func() error { return r.keys.pub.CheckCosign(ctx, t, o.Source) })
		}
		if err != nil {
			c.Detail = err.Error()
		} else {
			c.OK, c.Detail = true, "cosign signature of "+o.Source+" by "+r.keys.pub.Fingerprint()
		}
		checks = append(checks, c)
	}
	return checks
}

// checkLocalTag refuses to upload a tag the environment's release key did
// not sign: verify would reject it once pushed.
func (r *run) checkLocalTag(ctx context.Context, tagObj string) error {
	if r.keys.priv == nil {
		return nil
	}
	obj, err := r.p.Git.Output(ctx, "cat-file", "tag", tagObj)
	if err != nil {
		return err
	}
	if err := r.keys.pub.VerifyTag([]byte(obj)); err != nil {
		v := r.rec.Version
		return fmt.Errorf("tag %s is not signed by environments.%s.release_key %s (%v): sign it again without moving it: git -c gpg.format=ssh -c user.signingKey=%s tag -s -f -m 'release: %s' %s %s^{}",
			v, r.t.Env.Name, r.keys.pub.Fingerprint(), err, r.keys.priv.File, v, v, v)
	}
	return nil
}

// checkRemoteTag checks the signature of the tag object the remote has
// under refs/tags/VERSION (fetched without touching any ref when this
// repository lacks it).
func (r *run) checkRemoteTag(ctx context.Context, remoteURL, object string) Check {
	v := r.rec.Version
	c := Check{What: "git", Object: "refs/tags/" + v + " on " + remoteURL + " (signature)"}
	obj, err := r.p.Git.Output(ctx, "cat-file", "tag", object)
	if err != nil {
		if ferr := r.p.Git.Run(ctx, "fetch", "-q", "--no-tags", "--no-write-fetch-head", remoteURL, "refs/tags/"+v); ferr != nil {
			c.Detail = "cannot fetch the tag object " + short(object) + ": " + ferr.Error()
			return c
		}
		if obj, err = r.p.Git.Output(ctx, "cat-file", "tag", object); err != nil {
			c.Detail = fmt.Sprintf("%s is not a tag object (a lightweight tag?): %v", short(object), err)
			return c
		}
	}
	if err := r.keys.pub.VerifyTag([]byte(obj)); err != nil {
		c.Detail = fmt.Sprintf("tag object %s: %v (key %s)", short(object), err, r.keys.pub.Fingerprint())
		return c
	}
	c.OK, c.Detail = true, "signed by "+r.keys.pub.Fingerprint()
	return c
}
