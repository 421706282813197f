package binarycache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/retry"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// runNix runs a Nix command and returns its standard output and error.
func runNix(t *testing.T, n *testenv.Nix, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := n.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func mustNix(t *testing.T, n *testenv.Nix, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runNix(t, n, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return out
}

var (
	closureMu  sync.Mutex
	closureTop string
)

// realClosure builds testdata/closure.nix into the real store (once per
// run) and returns its top path and path information from Nix.
func realClosure(t *testing.T) (*testenv.Nix, string, []nixstore.PathInfo) {
	t.Helper()
	n := testenv.SetupNix(t)
	closureMu.Lock()
	defer closureMu.Unlock()
	if closureTop == "" {
		closureTop = strings.TrimSpace(mustNix(t, n, "nix-build", "--no-out-link", filepath.Join("testdata", "closure.nix")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos, err := LoadClosure(ctx, Source{Nix: nixstore.Nix{Env: n.Env}}, []string{closureTop})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("closure of %s has %d paths, want 3", closureTop, len(infos))
	}
	return n, closureTop, infos
}

// substitute copies top from the cache at from into a new chroot store
// with require-sigs and the given trusted key, as a user would, and
// returns the chroot store's root and the error.
func substitute(t *testing.T, n *testenv.Nix, from, top, trusted string) (string, string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "chroot")
	_, stderr, err := runNix(t, n, "nix", "copy", "--from", from, "--to", root,
		"--option", "require-sigs", "true", "--option", "trusted-public-keys", trusted, top)
	return root, stderr, err
}

// checkSubstituted compares what Nix substituted into the chroot store at
// root with the original paths.
func checkSubstituted(t *testing.T, n *testenv.Nix, root string, infos []nixstore.PathInfo) {
	t.Helper()
	for _, pi := range infos {
		out := mustNix(t, n, "nix", "path-info", "--json", "--store", root, pi.Path.String())
		got, err := nixstore.ParsePathInfo([]byte(out), "nix path-info", nixstore.DefaultStoreDir)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %v", pi.Path, err)
		}
		if got[0].NarHash != pi.NarHash || got[0].NarSize != pi.NarSize {
			t.Errorf("%s: substituted NAR %s/%d, want %s/%d", pi.Path, got[0].NarHash, got[0].NarSize, pi.NarHash, pi.NarSize)
		}
	}
	// The files themselves, through Nix's own check of the chroot store.
	mustNix(t, n, "nix", "store", "verify", "--store", root, "--no-trust", "--all")
}

// TestNixReadsFileCache: stock Nix substitutes a closure from a file://
// cache releng wrote, checking signatures, and refuses it with a wrong key.
func TestNixReadsFileCache(t *testing.T) {
	n, top, infos := realClosure(t)
	keyFile, pub := testKey(t, "releng-test-1")
	_, wrong := testKey(t, "releng-test-1")
	for _, params := range []string{"", "?compression=xz&compression-level=1", "?compression=none&write-nar-listing=true&want-mass-query=true"} {
		t.Run("params="+params, func(t *testing.T) {
			if strings.Contains(params, "xz") && testing.Short() {
				t.Skip("xz is slow")
			}
			b := dirBucket(t)
			sep := "?"
			if params != "" {
				sep = "&"
			}
			uri := mustURI(t, "file://"+b.Path()+params+sep+"secret-key="+keyFile)
			keys, err := uri.LoadKeys(false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: infos, Keys: keys}); err != nil {
				t.Fatal(err)
			}
			cache := "file://" + b.Path()
			root, stderr, err := substitute(t, n, cache, top, pub.String())
			if err != nil {
				t.Fatalf("nix copy --from %s: %v\n%s", cache, err, stderr)
			}
			checkSubstituted(t, n, root, infos)
			// Also nix-store -r with the cache as a substituter.
			root2 := filepath.Join(t.TempDir(), "chroot2")
			mustNix(t, n, "nix-store", "--store", root2, "-r", top, "--option", "substituters", cache,
				"--option", "require-sigs", "true", "--option", "trusted-public-keys", pub.String())
			checkSubstituted(t, n, root2, infos)

			_, stderr, err = substitute(t, n, cache, top, wrong.String())
			if err == nil || !strings.Contains(stderr, "signature") {
				t.Fatalf("nix copy with a wrong key: err %v\n%s", err, stderr)
			}
		})
	}
}

// TestNixReadsMinIOCache: releng pushes to MinIO through s3:// with the
// standard credential chain; stock Nix 2.8 (no S3 support) substitutes
// over plain HTTP from the public bucket, narinfos and listings
// zstd-encoded; a second push sends only existence checks.
func TestNixReadsMinIOCache(t *testing.T) {
	n, top, infos := realClosure(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "cache", true)
	for _, kv := range m.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("HOME", t.TempDir()) // no ~/.aws of the machine
	keyFile, pub := testKey(t, "releng-test-1")
	_, wrong := testKey(t, "other-key-1")
	proxy := newProxy(t, m.Endpoint)
	uri := mustURI(t, "s3://cache?endpoint="+proxy.Addr+"&scheme=http&region=us-east-1&secret-key="+keyFile+
		"&write-nar-listing=true&narinfo-compression=zstd&ls-compression=zstd&want-mass-query=true")
	b, err := uri.Open(OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := uri.LoadKeys(false)
	sum, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: infos, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pushed != 3 {
		t.Errorf("summary %+v", sum)
	}
	checkConsistent(t, b, nixstore.DefaultStoreDir, true, true, []nixstore.PublicKey{pub})
	// The narinfo is stored zstd-compressed with its Content-Encoding.
	info, err := b.Stat(context.Background(), infos[0].Path.Hash+".narinfo")
	if err != nil || info.ContentEncoding != "zstd" || info.ContentType != contentTypeNarInfo {
		t.Errorf("narinfo object: %+v, %v", info, err)
	}

	cache := m.URL() + "/cache"
	// releng reads the cache over HTTP as Nix does: the same checks pass,
	// and pushing there is refused.
	hu := mustURI(t, cache+"?write-nar-listing=true")
	hb, err := hu.Open(OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []nixstore.StorePath
	for _, pi := range infos {
		paths = append(paths, pi.Path)
	}
	for _, pc := range Verify(context.Background(), VerifyOptions{URI: hu, Bucket: hb, Keys: []nixstore.PublicKey{pub}, Paths: paths}) {
		if len(pc.Problems) > 0 {
			t.Errorf("verify over HTTP: %s: %v", pc.Path, pc.Problems)
		}
	}
	if _, err := PlanPush(context.Background(), PushOptions{URI: hu, Bucket: hb, Paths: infos}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a push plan to an http cache: %v", err)
	}
	root, stderr, err := substitute(t, n, cache, top, pub.String())
	if err != nil {
		t.Fatalf("nix copy --from %s: %v\n%s", cache, err, stderr)
	}
	checkSubstituted(t, n, root, infos)
	if _, stderr, err := substitute(t, n, cache, top, wrong.String()); err == nil || !strings.Contains(stderr, "signature") {
		t.Fatalf("nix copy with a wrong key: err %v\n%s", err, stderr)
	}

	// Second push: existence checks only.
	proxy.Reset()
	sum, err = Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: infos, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	leftoverLists := 0
	for _, r := range proxy.Requests() {
		switch {
		case r.Method == "GET" && strings.Contains(r.RawQuery, "uploads"):
			leftoverLists++ // the multipart uploads of a NAR that may go in parts
		case r.Method != "HEAD":
			methods = append(methods, r.Method+" "+r.Path)
		}
	}
	heads := len(proxy.Requests()) - len(methods) - leftoverLists
	// A push that sends nothing asks about no leftovers: an interrupted
	// push leaves them only under paths the next push writes.
	if leftoverLists != 0 {
		t.Errorf("second push: %d listings of multipart uploads, want none", leftoverLists)
	}
	// One HEAD per object (narinfo, NAR, listing), plus nix-cache-info.
	perPath := 2
	if uri.WriteNARListing {
		perPath = 3
	}
	if sum.Pushed != 0 || heads != perPath*len(infos) || len(methods) != 1 || !strings.HasSuffix(methods[0], "/nix-cache-info") {
		t.Errorf("second push: %d HEADs, other requests %v, summary %+v", heads, methods, sum)
	}
}

// TestNixPathNotInStore: a path that is not in the store, or not valid in
// it, is refused by name before anything is published.
func TestNixPathNotInStore(t *testing.T) {
	n := testenv.SetupNix(t)
	outside := t.TempDir()
	for _, tc := range []struct{ arg, want string }{
		{outside, "is not in the Nix store"},
		{filepath.Join(outside, "nope"), "does not exist"},
		{"/nix/store/00000000000000000000000000000000-releng-never-built", "00000000000000000000000000000000-releng-never-built"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			_, err := LoadClosure(context.Background(), Source{Nix: nixstore.Nix{Env: n.Env}}, []string{tc.arg})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCorruptPathS3: a corrupt path's multipart NAR upload to MinIO is
// abandoned: no object, no narinfo, no unfinished upload left behind.
func TestCorruptPathS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "corrupt", false)
	store := makeTestStore(t, 11, []pathSpec{
		{name: "ok", files: map[string]int{"a": 1000}},
		{name: "bad", random: map[string]int{"big": 48 << 20}, refs: []int{0}}, // more than the frames in flight
		{name: "top", files: map[string]int{"b": 1000}, refs: []int{1}},
	})
	var bad nixstore.PathInfo
	for _, pi := range store.Infos {
		if pi.Path.Name == "bad" {
			bad = pi
		}
	}
	f := filepath.Join(bad.Path.String(), "big")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0xff // near the end: after several parts were sent
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, m.Endpoint)
	uri := mustURI(t, "s3://corrupt?endpoint="+proxy.Addr+"&scheme=http&region=us-east-1")
	b, err := uri.Open(OpenOptions{Credentials: &credentials.Credentials{ID: m.AccessKey, Secret: credentials.Secret(m.SecretKey)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != bad.Path {
		t.Fatalf("err = %v, want a CorruptError for %s", err, bad.Path)
	}
	var multipart bool
	for _, r := range proxy.Requests() {
		multipart = multipart || strings.Contains(r.RawQuery, "partNumber=2")
	}
	if !multipart {
		t.Error("the corrupt NAR was not sent as a multipart upload: the test does not test what it should")
	}
	if exists(t, b, bad.Path.Hash+".narinfo") || exists(t, b, "nar/"+nixbase32(bad.NarHash)+".nar.zst") {
		t.Error("something of the corrupt path was published")
	}
	checkConsistent(t, b, store.Dir, true, false, nil)
	for up := range m.Client(t).ListIncompleteUploads(context.Background(), "corrupt", "", true) {
		t.Errorf("unfinished upload left: %+v", up)
	}
}

// TestPushS3Faults: connection resets and 503s in the middle of a push
// (through a fault-injecting proxy in front of MinIO) are retried; the push
// completes and the cache is whole.
func TestPushS3Faults(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "faults", false)
	store := makeTestStore(t, 12, []pathSpec{
		{name: "big", random: map[string]int{"blob": 24 << 20}},
		{name: "a", files: map[string]int{"x": 5000}, refs: []int{0}},
		{name: "b", files: map[string]int{"y": 7000}, refs: []int{1}},
	})
	proxy := newProxy(t, m.Endpoint)
	uri := mustURI(t, "s3://faults?endpoint="+proxy.Addr+"&scheme=http&region=us-east-1&write-nar-listing=true")
	var retries int
	b, err := uri.Open(OpenOptions{
		Credentials: &credentials.Credentials{ID: m.AccessKey, Secret: credentials.Secret(m.SecretKey)},
		OnRetry:     func(retry.Event) { retries++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	// After the existence checks, faults hit the uploads.
	n := 0
	_, err = Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos, OnEvent: func(e Event) {
		if e.Kind == EventNARStart && n == 0 {
			n++
			proxy.Fail(2, buckettest.Fault503)
			proxy.Fail(2, buckettest.FaultResetMidBody)
			proxy.Fail(1, buckettest.FaultReset)
		}
	}})
	if err != nil {
		t.Fatalf("push through faults: %v", err)
	}
	if proxy.Pending() != 0 {
		t.Errorf("%d faults were not injected", proxy.Pending())
	}
	if got := checkConsistent(t, b, store.Dir, true, true, nil); got != len(store.Infos) {
		t.Errorf("%d narinfos, want %d", got, len(store.Infos))
	}
	t.Logf("%d retries by the decorator", retries)
}

// TestLoadClosureFromDatabase: the local store's closures are read from
// Nix's database, with no `nix` process (PATH without it), and equal what
// `nix path-info --json --recursive` says, field for field; a store Nix
// would reach elsewhere (NIX_REMOTE) is asked of Nix.
func TestLoadClosureFromDatabase(t *testing.T) {
	n, top, _ := realClosure(t)
	ctx := context.Background()
	want, err := nixstore.Nix{Env: n.Env}.PathInfo(ctx, true, top)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	got, err := LoadClosure(ctx, Source{Nix: nixstore.Nix{Env: n.Env}}, []string{top})
	if err != nil {
		t.Fatalf("without nix on PATH: %v", err)
	}
	sortInfos := func(infos []nixstore.PathInfo) {
		slices.SortFunc(infos, func(a, b nixstore.PathInfo) int { return strings.Compare(a.Path.String(), b.Path.String()) })
		for i := range infos { // none is none, nil or empty
			infos[i].References = slices.Clip(append([]nixstore.StorePath(nil), infos[i].References...))
			infos[i].Signatures = slices.Clip(append([]string(nil), infos[i].Signatures...))
		}
	}
	sortInfos(got)
	sortInfos(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from the database:\n%+v\nfrom nix path-info:\n%+v", got, want)
	}
	remote := append(slices.Clone(n.Env), "NIX_REMOTE=ssh://example.invalid")
	if _, err := LoadClosure(ctx, Source{Nix: nixstore.Nix{Env: remote}}, []string{top}); err == nil {
		t.Error("with NIX_REMOTE set and no nix on PATH, the closure was read anyway")
	}
}

func TestDBMeans(t *testing.T) {
	out, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, "/nix/store/00000000000000000000000000000000-hello-1.0")
	drv, _ := nixstore.ParseStorePath(nixstore.DefaultStoreDir, "/nix/store/00000000000000000000000000000000-hello-1.0.drv")
	for _, tc := range []struct {
		derivation bool
		roots      []nixstore.StorePath
		want       bool
	}{
		{false, []nixstore.StorePath{out}, true},
		{false, []nixstore.StorePath{drv}, false},      // a newer Nix reads it as its outputs
		{true, []nixstore.StorePath{drv}, true},        // --derivation: the .drv itself
		{true, []nixstore.StorePath{out}, false},       // --derivation: the output's deriver
		{true, []nixstore.StorePath{drv, out}, false},  // mixed
		{false, []nixstore.StorePath{out, drv}, false}, // mixed
	} {
		if got := dbMeans(tc.derivation, tc.roots); got != tc.want {
			t.Errorf("dbMeans(%v, %v) = %v, want %v", tc.derivation, tc.roots, got, tc.want)
		}
	}
}
