package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/image/oci"
	"github.com/releng-project/releng/internal/retry"
)

// Remote is a repository of a registry.
type Remote struct {
	ref       string
	repo      name.Repository
	client    *http.Client
	base      string // scheme://host
	chunk     int64
	anonymous bool
	c         counters
}

// defaultTransport is the registries' HTTP transport; like the object
// stores', it gives up on a request that stalls (bucket.WatchIdle).
var defaultTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return bucket.WatchIdle(t)
}()

// OpenRemote connects to the repository ref (HOST[:PORT]/REPO) with the
// credentials the keychain has for it.
func OpenRemote(ctx context.Context, ref string, opts Options) (*Remote, error) {
	if err := checkRepository(ref); err != nil {
		return nil, err
	}
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%s: not a repository (HOST[:PORT]/REPO or %sDIR): %v", ref, OCIPrefix, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = DefaultKeychain()
	}
	auth, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return nil, fmt.Errorf("%s: reading credentials for %s: %v", ref, repo.RegistryStr(), err)
	}
	r := &Remote{ref: ref, repo: repo, chunk: opts.ChunkSize, anonymous: auth == authn.Anonymous}
	if r.chunk <= 0 {
		r.chunk = DefaultChunkSize
	}
	base := opts.Transport
	if base == nil {
		base = defaultTransport
	}
	base = &countingTransport{inner: base, c: &r.c}
	if opts.UserAgent != "" {
		base = transport.NewUserAgent(base, opts.UserAgent)
	}
	scope := transport.PushScope
	if opts.ReadOnly {
		scope = transport.PullScope
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(scope)})
	if err != nil {
		return nil, r.explain(fmt.Errorf("%s: %w", ref, err))
	}
	r.client = &http.Client{Transport: rt}
	r.base = repo.Registry.Scheme() + "://" + repo.RegistryStr()
	return r, nil
}

type countingTransport struct {
	inner http.RoundTripper
	c     *counters
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	return t.inner.RoundTrip(r)
}

func (r *Remote) String() string { return r.ref }

// Stats says what was sent so far.
func (r *Remote) Stats() Stats { return r.c.stats() }

// Repository returns HOST/REPO, as cross-repository mounts name it.
func (r *Remote) Repository() string { return r.repo.RegistryStr() + "/" + r.repo.RepositoryStr() }

func (r *Remote) url(suffix string) string {
	return r.base + "/v2/" + r.repo.RepositoryStr() + suffix
}

// explain adds what to do to authentication failures.
func (r *Remote) explain(err error) error {
	var te *transport.Error
	status := 0
	if errors.As(err, &te) {
		status = te.StatusCode
	}
	host := r.repo.RegistryStr()
	switch {
	case status == http.StatusUnauthorized && r.anonymous, r.anonymous && strings.Contains(err.Error(), "UNAUTHORIZED"):
		return fmt.Errorf("%w\nregistry %s wants credentials and none were found for it (looked in $DOCKER_CONFIG/config.json or ~/.docker/config.json and their credential helpers, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json): log in with `docker login %s` or `skopeo login %s`", err, host, host, host)
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%w\nregistry %s refused the credentials found for it: log in again (`docker login %s` or `skopeo login %s`)", err, host, host, host)
	case status == http.StatusForbidden:
		return fmt.Errorf("%w\nthe credentials for %s may not push to %s: ask for push access or use another repository", err, host, r.repo.RepositoryStr())
	}
	return err
}

// do sends a request and checks its status against ok.
func (r *Remote) do(ctx context.Context, method, u string, body []byte, hdr map[string]string, ok ...int) (*http.Response, error) {
	if body == nil {
		return r.doBody(ctx, method, u, nil, 0, hdr, ok...)
	}
	return r.doBody(ctx, method, u, func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), hdr, ok...)
}

// doBody sends a request whose body (of size bytes) body makes, afresh
// for every attempt; body is nil for none.
func (r *Remote) doBody(ctx context.Context, method, u string, body func() io.Reader, size int64, hdr map[string]string, ok ...int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = body()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, redact(u), err)
	}
	if err := transport.CheckError(resp, ok...); err != nil {
		resp.Body.Close()
		// A 429 or 503 may say when to come back (retry.Policy waits so).
		return nil, retry.WithAfter(r.explain(err), retry.ResponseDelay(resp))
	}
	return resp, nil
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// HasBlob sends a HEAD for the blob.
func (r *Remote) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := ValidDigest(digest); err != nil {
		return false, err
	}
	resp, err := r.do(ctx, http.MethodHead, r.url("/blobs/"+digest), nil, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	drain(resp)
	return resp.StatusCode == http.StatusOK, nil
}

// Mount asks the registry to mount the blob from each repository of from
// that is on the same registry, until one works.
func (r *Remote) Mount(ctx context.Context, digest string, from []string) (bool, error) {
	host := r.repo.RegistryStr() + "/"
	for _, f := range from {
		src, ok := strings.CutPrefix(f, host)
		if !ok || src == r.repo.RepositoryStr() {
			continue
		}
		q := url.Values{"mount": {digest}, "from": {src}}
		resp, err := r.do(ctx, http.MethodPost, r.url("/blobs/uploads/?"+q.Encode()), []byte{}, nil, http.StatusCreated, http.StatusAccepted)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			continue // no access to the source, or it is gone: upload instead
		}
		drain(resp)
		if resp.StatusCode == http.StatusCreated {
			r.c.mounted.Add(1)
			return true, nil
		}
		if loc, err := location(resp); err == nil {
			if dr, err := r.do(ctx, http.MethodDelete, loc, nil, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound); err == nil {
				drain(dr)
			}
		}
	}
	return false, nil
}

func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: the registry sent no Location for the upload", resp.Request.Method, redact(resp.Request.URL.String()))
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("registry sent a bad upload Location %q: %v", loc, err)
	}
	return u.String(), nil
}

// PutBlob uploads a blob whose digest is known.
func (r *Remote) PutBlob(ctx context.Context, digest string, size int64, src io.Reader) error {
	if err := ValidDigest(digest); err != nil {
		return err
	}
	final := func() (string, error) { return digest, nil }
	var n int64
	var err error
	if ra, ok := src.(io.ReaderAt); ok && size >= 0 {
		n, err = r.uploadAt(ctx, ra, size, final)
	} else {
		n, err = r.upload(ctx, src, final)
	}
	if err == nil && size >= 0 && n != size {
		return fmt.Errorf("blob %s: %d bytes sent, %d expected", digest, n, size)
	}
	return err
}

// StreamBlob uploads what write writes, in chunks, and commits it with the
// digest write returns.
func (r *Remote) StreamBlob(ctx context.Context, write func(io.Writer) (string, error)) (int64, error) {
	pr, pw := io.Pipe()
	var digest string
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		digest, werr = write(pw)
		pw.CloseWithError(werr)
	}()
	n, err := r.upload(ctx, pr, func() (string, error) {
		<-done
		return digest, werr
	})
	pr.CloseWithError(errors.New("upload stopped"))
	<-done
	if err != nil {
		// When write failed first, the upload failed reading its error.
		return n, err
	}
	return n, werr
}

var chunkPool sync.Map // size → *sync.Pool

func getChunk(size int64) *[]byte {
	p, _ := chunkPool.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool).Get().(*[]byte)
}

func putChunk(size int64, b *[]byte) {
	p, _ := chunkPool.Load(size)
	p.(*sync.Pool).Put(b)
}

// upload sends src: POST to open an upload, a PATCH per full chunk, and a
// PUT with the rest and the digest final returns once src is exhausted.
func (r *Remote) upload(ctx context.Context, src io.Reader, final func() (string, error)) (int64, error) {
	loc, cancel, err := r.startUpload(ctx)
	if err != nil {
		return 0, err
	}
	// A reader fills chunks while the previous one is being sent, so that
	// a streamed blob is made and sent at the same time.
	type piece struct {
		buf *[]byte
		n   int
		err error // nil: a full chunk, more may follow
	}
	pieces := make(chan piece, 1) // one chunk sent, one ready, one being filled
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(pieces)
		for {
			bp := getChunk(r.chunk)
			n, err := io.ReadFull(src, *bp)
			select {
			case pieces <- piece{bp, n, err}:
			case <-stop:
				putChunk(r.chunk, bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	fail := func(err error) (int64, error) {
		cancel()
		return 0, err
	}
	h := sha256.New()
	var off int64
	for p := range pieces {
		buf := (*p.buf)[:p.n]
		if p.err != nil && p.err != io.EOF && p.err != io.ErrUnexpectedEOF {
			putChunk(r.chunk, p.buf)
			return fail(p.err)
		}
		h.Write(buf)
		if p.err == nil { // a full chunk; more may follow
			hdr := map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", off, off+int64(p.n)-1),
			}
			resp, err := r.do(ctx, http.MethodPatch, loc, buf, hdr, http.StatusAccepted, http.StatusNoContent)
			putChunk(r.chunk, p.buf)
			if err != nil {
				return fail(err)
			}
			drain(resp)
			if loc, err = location(resp); err != nil {
				return fail(err)
			}
			off += int64(p.n)
			r.c.bytes.Add(int64(p.n))
			continue
		}
		defer putChunk(r.chunk, p.buf)
		digest, err := final()
		if err != nil {
			return fail(err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
			return fail(fmt.Errorf("%w: the bytes sent have digest %s, not %s", ErrDigestMismatch, got, digest))
		}
		u, err := url.Parse(loc)
		if err != nil {
			return fail(err)
		}
		q := u.Query()
		q.Set("digest", digest)
		u.RawQuery = q.Encode()
		resp, err := r.do(ctx, http.MethodPut, u.String(), buf, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated, http.StatusNoContent)
		if err != nil {
			return fail(err)
		}
		drain(resp)
		off += int64(p.n)
		r.c.bytes.Add(int64(p.n))
		r.c.uploaded.Add(1)
		return off, nil
	}
	return fail(errors.New("upload: the blob reader stopped early"))
}

// uploadAt sends size bytes of src (a file) like upload, but each chunk
// is read straight from src into the request: no buffer, and a chunk can
// be sent again if a connection drops.
func (r *Remote) uploadAt(ctx context.Context, src io.ReaderAt, size int64, final func() (string, error)) (int64, error) {
	loc, cancel, err := r.startUpload(ctx)
	if err != nil {
		return 0, err
	}
	digest, err := final()
	if err != nil {
		cancel()
		return 0, err
	}
	h := sha256.New()
	var off int64
	for {
		n := min(r.chunk, size-off)
		last := off+n >= size
		section := func() io.Reader { return io.NewSectionReader(src, off, n) }
		// Hash what is read the first time through.
		hashed := false
		body := func() io.Reader {
			if hashed {
				return section()
			}
			hashed = true
			return io.TeeReader(section(), h)
		}
		method, u := http.MethodPatch, loc
		hdr := map[string]string{"Content-Type": "application/octet-stream"}
		okCodes := []int{http.StatusAccepted, http.StatusNoContent}
		if last {
			pu, perr := url.Parse(loc)
			if perr != nil {
				cancel()
				return off, perr
			}
			q := pu.Query()
			q.Set("digest", digest)
			pu.RawQuery = q.Encode()
			method, u, okCodes = http.MethodPut, pu.String(), []int{http.StatusCreated, http.StatusNoContent}
		} else {
			hdr["Content-Range"] = fmt.Sprintf("%d-%d", off, off+n-1)
		}
		resp, err := r.doBody(ctx, method, u, body, n, hdr, okCodes...)
		if err != nil {
			cancel()
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); last && got != digest {
				return off, fmt.Errorf("%w: the bytes sent have digest %s, not %s", ErrDigestMismatch, got, digest)
			}
			return off, err
		}
		drain(resp)
		off += n
		r.c.bytes.Add(n)
		if last {
			r.c.uploaded.Add(1)
			return off, nil
		}
		if loc, err = location(resp); err != nil {
			cancel()
			return off, err
		}
	}
}

// startUpload opens an upload session; cancel deletes it.
func (r *Remote) startUpload(ctx context.Context) (loc string, cancel func(), err error) {
	resp, err := r.do(ctx, http.MethodPost, r.url("/blobs/uploads/"), []byte{}, nil, http.StatusAccepted)
	if err != nil {
		return "", nil, err
	}
	drain(resp)
	if loc, err = location(resp); err != nil {
		return "", nil, err
	}
	return loc, func() {
		if dr, err := r.do(context.WithoutCancel(ctx), http.MethodDelete, loc, nil, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound); err == nil {
			drain(dr)
		}
	}, nil
}

// PutManifest puts a manifest or index under a digest or tag.
func (r *Remote) PutManifest(ctx context.Context, ref, mediaType string, body []byte) error {
	if ValidDigest(ref) != nil {
		if err := ValidTag(ref); err != nil {
			return err
		}
	}
	resp, err := r.do(ctx, http.MethodPut, r.url("/manifests/"+ref), body, map[string]string{"Content-Type": mediaType}, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return err
	}
	drain(resp)
	r.c.manifests.Add(1)
	return nil
}

// CheckPush opens an upload and cancels it: the cheapest request that
// needs push access.
func (r *Remote) CheckPush(ctx context.Context) error {
	resp, err := r.do(ctx, http.MethodPost, r.url("/blobs/uploads/"), []byte{}, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	drain(resp)
	loc, err := location(resp)
	if err != nil {
		return err
	}
	if dr, err := r.do(ctx, http.MethodDelete, loc, nil, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound); err == nil {
		drain(dr)
	}
	return nil
}

// Transient reports whether err is worth retrying: a dropped or reset
// connection, a timeout, a 5xx, 429 (Too Many Requests) or 408 answer, or
// one of the error codes the distribution spec calls temporary. This is
// the registry's classifier for the shared retry policy (internal/retry),
// as bucket.IsTransient is the object stores'.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Temporary() || te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusRequestTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// A reset while the body is being written may surface as the write
	// to a connection the transport closed on reading the reset.
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset by peer")
}

// NotFound reports whether err is a 404 from the registry (for an index
// put: a child manifest it does not see yet).
func NotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// manifestAccept lists the manifest media types a read accepts.
var manifestAccept = strings.Join([]string{oci.MediaTypeIndex, oci.MediaTypeManifest, oci.MediaTypeDockerManifestList, oci.MediaTypeDockerManifest}, ", ")

// StatBlob sends a HEAD for the blob and returns the size the registry
// reports.
func (r *Remote) StatBlob(ctx context.Context, digest string) (int64, bool, error) {
	if err := ValidDigest(digest); err != nil {
		return 0, false, err
	}
	resp, err := r.do(ctx, http.MethodHead, r.url("/blobs/"+digest), nil, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return 0, false, err
	}
	drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return 0, false, nil
	}
	return resp.ContentLength, true, nil
}

// ReadBlob GETs the blob.
func (r *Remote) ReadBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodGet, r.url("/blobs/"+digest), nil, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		drain(resp)
		return nil, fmt.Errorf("%s: blob %s: %w", r.ref, digest, ErrNotFound)
	}
	return resp.Body, nil
}

// checkRef checks a tag or digest.
func checkRef(ref string) error {
	if ValidDigest(ref) == nil {
		return nil
	}
	return ValidTag(ref)
}

// Resolve sends a HEAD for the manifest ref names.
func (r *Remote) Resolve(ctx context.Context, ref string) (oci.Descriptor, bool, error) {
	if err := checkRef(ref); err != nil {
		return oci.Descriptor{}, false, err
	}
	resp, err := r.do(ctx, http.MethodHead, r.url("/manifests/"+ref), nil, map[string]string{"Accept": manifestAccept}, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return oci.Descriptor{}, false, err
	}
	drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return oci.Descriptor{}, false, nil
	}
	d := oci.Descriptor{MediaType: resp.Header.Get("Content-Type"), Digest: resp.Header.Get("Docker-Content-Digest"), Size: resp.ContentLength}
	if ValidDigest(d.Digest) != nil || d.Size < 0 {
		// A registry that does not say: read it.
		md, _, err := r.Manifest(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			return oci.Descriptor{}, false, nil
		}
		return md, err == nil, err
	}
	return d, true, nil
}

// Manifest GETs the manifest ref names.
func (r *Remote) Manifest(ctx context.Context, ref string) (oci.Descriptor, []byte, error) {
	if err := checkRef(ref); err != nil {
		return oci.Descriptor{}, nil, err
	}
	resp, err := r.do(ctx, http.MethodGet, r.url("/manifests/"+ref), nil, map[string]string{"Accept": manifestAccept}, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return oci.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return oci.Descriptor{}, nil, fmt.Errorf("%s: manifest %s: %w", r.ref, ref, ErrNotFound)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifest+1))
	if err != nil {
		return oci.Descriptor{}, nil, fmt.Errorf("%s: manifest %s: %w", r.ref, ref, err)
	}
	if len(body) > MaxManifest {
		return oci.Descriptor{}, nil, fmt.Errorf("%s: manifest %s is larger than %d bytes", r.ref, ref, MaxManifest)
	}
	d := oci.Descriptor{MediaType: resp.Header.Get("Content-Type"), Digest: resp.Header.Get("Docker-Content-Digest"), Size: int64(len(body))}
	if ValidDigest(d.Digest) != nil {
		d.Digest = oci.Digest(body)
	}
	return d, body, nil
}
