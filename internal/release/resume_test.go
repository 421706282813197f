package release

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/testenv"
)

// The tests of this file publish a synthetic release (no Nix build): a
// git repository with version.json and releng.toml, and a release/ with
// build.json as `releng build` leaves it, whose version directory holds
// one large file (written sparse: a block number every MiB, zeros between,
// so that every part differs and the file costs nothing to write) and a
// few small ones.

const synVersionDir = "artifacts/syn/syn-1.0.0"

// synProject writes the project; big is the large file's size.
func synProject(t *testing.T, toml string, big int64) string {
	t.Helper()
	r := testenv.NewGitRepo(t)
	r.Write("version.json", "{\n  \"version\": \"1.0.0\",\n  \"official_release\": false,\n  \"release_name\": \"x\"\n}\n")
	r.Write("releng.toml", "name = \"syn\"\n\n"+toml)
	r.Write(".gitignore", "/release/\n/out/\n")
	commit := r.CommitAll("syn 1.0.0")
	rel := filepath.Join(r.Dir, "release")
	vdir := filepath.Join(rel, filepath.FromSlash(synVersionDir))
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(vdir, "syn-1.0.0-big.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(big); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off+8 <= big; off += 1 << 20 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(off>>20)+1)
		if _, err := f.WriteAt(b[:], off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		os.WriteFile(filepath.Join(vdir, fmt.Sprintf("small-%d.txt", i)), []byte(strings.Repeat(fmt.Sprint(i), 1000*(i+1))), 0o644)
	}
	rec := &artifacts.Record{Name: "syn", Version: "1.0.0", Major: "1.0", Profile: "all", Target: "all", Commit: commit,
		Manifest: map[string]string{}, VersionDir: synVersionDir}
	if rec.Files, err = artifacts.RecordTree(rel, "artifacts"); err != nil {
		t.Fatal(err)
	}
	if err := rec.Save(rel); err != nil {
		t.Fatal(err)
	}
	return r.Dir
}

// synUpload runs `releng upload --noconfirm --no-check-git` of the
// synthetic project to env under ctx, with events sent to onEvent too.
func synUpload(ctx context.Context, t *testing.T, projDir, env string, onEvent func(runctx.Event)) (*UploadReport, string, error) {
	t.Helper()
	p, err := project.Open(project.Options{Dir: projDir})
	if err != nil {
		t.Fatal(err)
	}
	var logb strings.Builder
	logf := logEvents(&logb)
	rc := &runctx.Run{Events: func(e runctx.Event) {
		logf(e)
		if onEvent != nil {
			onEvent(e)
		}
	}}
	rep, err := Upload(ctx, p, UploadOptions{Environment: env, NoConfirm: true, NoCheckGit: true, Run: rc})
	return rep, logb.String(), err
}

// partProxy is a reverse proxy to MinIO that counts the bytes of the
// multipart part bodies it forwards (read from the wire, not taken from
// Content-Length) and, once limit parts went through, calls stop and
// resets every further part request.
type partProxy struct {
	addr string

	mu      sync.Mutex
	parts   int
	bytes   int64    // part bodies forwarded
	okBytes int64    // of those, the parts stored
	numbers []string // the numbers of the parts stored
	single  int64    // bodies of other PUTs
	limit   int      // 0: none
	stop    func()
}

func newPartProxy(t *testing.T, target string) *partProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partProxy{addr: l.Addr().String()}
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(to); pr.Out.Host = pr.In.Host },
		Transport: &http.Transport{DisableCompression: true},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		part := r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
		if part {
			p.mu.Lock()
			over := p.limit > 0 && p.parts >= p.limit
			p.mu.Unlock()
			if over {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
		}
		c := &countReader{r: r.Body}
		r.Body = c
		rw := &statusWriter{ResponseWriter: w}
		rp.ServeHTTP(rw, r)
		if r.Method != http.MethodPut {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if !part {
			p.single += c.n
			return
		}
		p.bytes += c.n
		if rw.status == http.StatusOK {
			p.okBytes += c.n
			p.numbers = append(p.numbers, r.URL.Query().Get("partNumber"))
			p.parts++
			if p.limit > 0 && p.parts == p.limit && p.stop != nil {
				p.stop()
			}
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// take returns the bytes of the part bodies forwarded and of those the
// server stored, with their part numbers, and zeroes the counts.
func (p *partProxy) take() (parts, stored int64, numbers []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts, stored, numbers = p.bytes, p.okBytes, p.numbers
	p.bytes, p.okBytes, p.numbers, p.single, p.parts = 0, 0, nil, 0, 0
	return parts, stored, numbers
}

type countReader struct {
	r io.ReadCloser
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countReader) Close() error { return c.r.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// s3Listing describes what a bucket holds: each object with its size and
// recorded sha256, then each multipart upload in progress of keys.
func s3Listing(t *testing.T, c *minio.Client, name string, keys []string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for oi := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true, WithMetadata: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		st, err := c.StatObject(ctx, name, oi.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("object %s %d sha256:%s", oi.Key, oi.Size, st.UserMetadata["Sha256"]))
	}
	for _, k := range keys {
		for _, u := range uploadsOf(t, c, name, k) {
			out = append(out, "multipart upload of "+k+" "+u)
		}
	}
	slices.Sort(out)
	return out
}

// uploadsOf lists the ids of the multipart uploads in progress of key
// (MinIO lists those of one key at a time).
func uploadsOf(t *testing.T, c *minio.Client, name, key string) []string {
	t.Helper()
	res, err := minio.Core{Client: c}.ListMultipartUploads(context.Background(), name, key, "", "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range res.Uploads {
		if u.Key == key {
			ids = append(ids, u.UploadID)
		}
	}
	return ids
}

// TestMultipartResume publishes a 200 MB file to S3 (MinIO behind a proxy
// that counts the bytes of every part): a first upload is stopped after 4
// parts, with a stray upload of the same key (as a kill between starting
// an upload and journaling it leaves) and another tool's uploads beside
// it; the re-run confirms the journaled upload's parts with ListParts and
// sends only the missing ones — the bytes re-sent are exactly the object's
// size less the parts the server holds — completes the object with the
// right sha256, and aborts releng's abandoned upload but no one else's.
// The bucket then holds what an uninterrupted upload leaves in another.
func TestMultipartResume(t *testing.T) {
	const size = 200 << 20
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "releases", false)
	m.MakeBucket(t, "clean", false)
	px := newPartProxy(t, m.Endpoint)
	creds := filepath.Join(t.TempDir(), "creds.sh")
	os.WriteFile(creds, fmt.Appendf(nil, "#!/bin/sh\necho '{\"name\": \"releng-$1\", \"id\": \"%s\", \"secret_key\": \"%s\"}'\n", m.AccessKey, m.SecretKey), 0o755)
	env := func(name, bucketName string) string {
		return fmt.Sprintf("[environments.%s]\nreleases = \"s3://%s\"\ns3_endpoint = \"http://%s\"\ns3_region = \"us-east-1\"\ncredentials_command = [%q, \"{env}\"]\n\n", name, bucketName, px.addr, creds)
	}
	dir := synProject(t, env("s3", "releases")+env("clean", "clean"), size)
	c := m.Client(t)
	ctx := context.Background()
	bigKey := "syn/syn-1.0.0/syn-1.0.0-big.tar"
	keys := []string{bigKey}

	// The uninterrupted upload, for comparison.
	if _, log, err := synUpload(ctx, t, dir, "clean", nil); err != nil {
		t.Fatalf("uninterrupted upload: %v\n%s", err, log)
	}
	cleanBytes, _, _ := px.take()
	want := s3Listing(t, c, "clean", keys)

	// Stopped after 4 parts.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	px.mu.Lock()
	px.limit, px.stop = 4, cancel
	px.mu.Unlock()
	if _, log, err := synUpload(cctx, t, dir, "s3", nil); err == nil {
		t.Fatalf("the interrupted upload succeeded\n%s", log)
	}
	px.mu.Lock()
	px.limit, px.stop = 0, nil
	px.mu.Unlock()
	firstBytes, _, _ := px.take()
	if _, err := c.StatObject(ctx, "releases", bigKey, minio.StatObjectOptions{}); err == nil {
		t.Fatal("the interrupted upload completed the object")
	}
	ids := uploadsOf(t, c, "releases", bigKey)
	if len(ids) != 1 {
		t.Fatalf("uploads of %s after the interruption: %v", bigKey, ids)
	}
	// The journal records that upload and the parts sent, all on the server.
	p, err := project.Open(project.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := artifacts.Load(p.ReleaseDir())
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(p.StateDir(), "s3.journal"), releaseID(rec))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := j.Upload("s3://releases/" + bigKey)
	j.Close()
	core := minio.Core{Client: c}
	parts, err := core.ListObjectParts(ctx, "releases", bigKey, ids[0], 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var onServer int64
	server := map[int]int64{}
	for _, pt := range parts.ObjectParts {
		onServer += pt.Size
		server[pt.PartNumber] = pt.Size
	}
	if !ok || st.ID != ids[0] || len(st.Parts) == 0 {
		t.Fatalf("journaled upload %+v (found %v); the server has upload %s", st, ok, ids[0])
	}
	for _, pt := range st.Parts {
		if server[pt.Number] != pt.Size {
			t.Errorf("journaled part %d (%d bytes) is not on the server", pt.Number, pt.Size)
		}
	}
	// What another tool, and a releng killed before journaling, left.
	stray, err := core.NewMultipartUpload(ctx, "releases", bigKey, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := []string{"syn/syn-1.0.0/syn-1.0.0-big.tar.part", "other/tool.bin"}
	for _, k := range foreign {
		if _, err := core.NewMultipartUpload(ctx, "releases", k, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(uploadsOf(t, c, "releases", bigKey))

	rep, log, err := synUpload(ctx, t, dir, "s3", nil)
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, log)
	}
	resent, stored, numbers := px.take()
	t.Logf("object %d bytes; uninterrupted run sent %d bytes of parts; the interrupted one %d, of which %d in %d parts on the server (%d journaled); the re-run sent %d (%d stored: parts %v); releng's multipart uploads of the key: %d before the re-run, %d after",
		int64(size), cleanBytes, firstBytes, onServer, len(parts.ObjectParts), len(st.Parts), resent, stored, numbers, before, len(uploadsOf(t, c, "releases", bigKey)))
	if stored != size-onServer {
		t.Errorf("the re-run stored %d bytes of parts; want the %d missing (%d - %d on the server)", stored, size-onServer, int64(size), onServer)
	}
	// A part whose request failed transiently is sent again whole (seen
	// under CI load: up to 2.5 parts' worth); what counts is that only
	// missing parts are stored and none the server had is sent (below).
	if resent > stored+64<<20 {
		t.Errorf("the re-run sent %d bytes of parts for %d stored: more than four parts retried\n%s", resent, stored, log)
	}
	for _, n := range numbers {
		var num int
		fmt.Sscan(n, &num)
		if _, ok := server[num]; ok {
			t.Errorf("the re-run sent part %d again, which the server held", num)
		}
	}
	if cleanBytes != size {
		t.Errorf("the uninterrupted upload sent %d bytes of parts, want %d", cleanBytes, int64(size))
	}
	if s := step(rep, "releases"); s.Objects != 4 {
		t.Errorf("releases step of the re-run: %+v", s)
	}
	if !strings.Contains(log, stray) {
		t.Errorf("the re-run does not say it aborted the stray upload %s:\n%s", stray, log)
	}
	// The object is whole.
	obj, err := c.GetObject(ctx, "releases", bigKey, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj)
	obj.Close()
	var wantSum string
	for _, f := range rec.Files {
		if strings.HasSuffix(f.Path, "big.tar") {
			wantSum = f.SHA256
		}
	}
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != wantSum {
		t.Errorf("the resumed object: %d bytes, sha256 %x, %v; want %d, %s", n, h.Sum(nil), err, int64(size), wantSum)
	}
	// The same listing as the uninterrupted run's, multipart uploads
	// included (none of releng's left); the other tools' uploads stand.
	if got := s3Listing(t, c, "releases", keys); !slices.Equal(got, want) {
		t.Errorf("after the resumed upload:\n  %s\nafter an uninterrupted one:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, k := range foreign {
		if len(uploadsOf(t, c, "releases", k)) != 1 {
			t.Errorf("another tool's upload of %s was touched", k)
		}
	}
}

// dirListing describes a directory destination: every file below root
// (temporary files included) with its size and sha256; the metadata
// records (which hold mtimes and inodes) by name alone.
func dirListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, ".releng-meta/") && !strings.Contains(rel, ".releng-tmp-") {
			out = append(out, "record "+rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out = append(out, fmt.Sprintf("file %s %d %x", rel, len(data), sum))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestFileDestinationLeftovers interrupts uploads to a file:// releases
// bucket at a few points (a 66 MiB file goes up in resumable parts through
// a staging file), plants what a kill -9 leaves (temporary files of a
// Put, a record and an abandoned staged upload, which nobody holds), and
// re-runs: the destination is then file for file what an uninterrupted
// upload leaves, with no temporary file.
func TestFileDestinationLeftovers(t *testing.T) {
	const size = 66 << 20
	var toml strings.Builder
	points := []int{0, 2}
	for _, k := range points {
		fmt.Fprintf(&toml, "[environments.cut%d]\nreleases = \"out/cut%d\"\n\n", k, k)
	}
	toml.WriteString("[environments.clean]\nreleases = \"out/clean\"\n")
	projDir := synProject(t, toml.String(), size)
	ctx := context.Background()
	if _, log, err := synUpload(ctx, t, projDir, "clean", nil); err != nil {
		t.Fatalf("uninterrupted upload: %v\n%s", err, log)
	}
	want := dirListing(t, filepath.Join(projDir, "out", "clean"))
	for _, k := range points {
		env := fmt.Sprintf("cut%d", k)
		root := filepath.Join(projDir, "out", env)
		cctx, cancel := context.WithCancel(ctx)
		var mu sync.Mutex
		seen := 0
		_, log, err := synUpload(cctx, t, projDir, env, func(e runctx.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Kind == runctx.StageStart && k == 0 || e.Kind == runctx.Object && e.Stage == "releases" {
				if seen++; seen > k {
					cancel()
				}
			}
		})
		cancel()
		if err == nil {
			t.Fatalf("%s: the interrupted upload succeeded\n%s", env, log)
		}
		// What a kill -9 leaves besides.
		vdir := filepath.Join(root, "syn", "syn-1.0.0")
		os.MkdirAll(vdir, 0o755)
		dead := []string{".releng-tmp-0123456789abcdef01234567", ".releng-tmp-up-0123456789abcdef0123456789abcdef"}
		for _, d := range dead {
			os.WriteFile(filepath.Join(vdir, d), []byte("half written"), 0o644)
		}
		b, err := dir.New(root)
		if err != nil {
			t.Fatal(err)
		}
		left, err := bucket.Leftovers(ctx, b, []bucket.ObjectInfo{{Key: "syn/syn-1.0.0/small-0.txt"}})
		b.Close()
		if err != nil || len(left) < len(dead) {
			t.Errorf("%s: leftovers before the re-run: %v, %v", env, left, err)
		}
		_, log, err = synUpload(ctx, t, projDir, env, nil)
		if err != nil {
			t.Fatalf("%s: re-run: %v\n%s", env, err, log)
		}
		t.Logf("%s: %d leftovers before the re-run, removed: %d", env, len(left), strings.Count(log, "left by an interrupted run"))
		if got := dirListing(t, root); !slices.Equal(got, want) {
			t.Errorf("%s after the re-run:\n  %s\nafter an uninterrupted upload:\n  %s", env, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}
