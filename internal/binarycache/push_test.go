package binarycache

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/nixstore"
)

// testKey writes a fresh secret key file and returns it with its public key.
func testKey(t testing.TB, name string) (string, nixstore.PublicKey) {
	t.Helper()
	file := filepath.Join(t.TempDir(), name+".sec")
	pub, err := nixstore.GenerateKeyFile(name, file)
	if err != nil {
		t.Fatal(err)
	}
	return file, pub
}

func dirBucket(t testing.TB) *dir.Bucket {
	t.Helper()
	b, err := dir.New(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustURI(t testing.TB, raw string) *StoreURI {
	t.Helper()
	u, err := ParseStoreURI(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPushDirectory(t *testing.T) {
	// Sizes span one frame, several frames and tiny files.
	store := makeTestStore(t, 1, append(chainSpecs(6, 1000, 70_000), pathSpec{name: "big", files: map[string]int{"blob": 2*FrameSize + 12345}, refs: []int{5}}))
	keyFile, pub := testKey(t, "test-1")
	keyFile2, pub2 := testKey(t, "test-2")
	for _, tc := range []struct {
		name, params string
		listing      bool
	}{
		{"zstd", "?write-nar-listing=true&want-mass-query=true&priority=30&secret-keys=" + keyFile + "," + keyFile2, true},
		{"xz", "?compression=xz&secret-key=" + keyFile, false},
		{"none", "?compression=none&write-nar-listing=1&secret-key=" + keyFile, true},
		{"zstd-level", "?compression=zstd&compression-level=9&parallel-compression=true&secret-key=" + keyFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "xz" && testing.Short() {
				t.Skip("xz is slow")
			}
			b := dirBucket(t)
			uri := mustURI(t, "file://"+b.Path()+tc.params)
			keys, err := uri.LoadKeys(false)
			if err != nil {
				t.Fatal(err)
			}
			var events []Event
			sum, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos, Keys: keys, Jobs: 3, OnEvent: func(e Event) { events = append(events, e) }})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Pushed != len(store.Infos) || sum.Skipped != 0 || len(sum.PushedPaths) != len(store.Infos) {
				t.Errorf("summary %+v", sum)
			}
			var narTotal int64
			for _, pi := range store.Infos {
				narTotal += int64(pi.NarSize)
			}
			if sum.NarBytes != narTotal {
				t.Errorf("NarBytes %d, want %d", sum.NarBytes, narTotal)
			}
			pubs := []nixstore.PublicKey{pub}
			if len(keys) == 2 {
				pubs = append(pubs, pub2)
			}
			if n := checkConsistent(t, b, store.Dir, true, tc.listing, pubs); n != len(store.Infos) {
				t.Errorf("%d narinfos, want %d", n, len(store.Infos))
			}
			info := string(readObject(t, b, CacheInfoKey))
			want := "StoreDir: " + store.Dir + "\n"
			if tc.name == "zstd" {
				want += "WantMassQuery: 1\nPriority: 30\n"
			}
			if info != want {
				t.Errorf("nix-cache-info = %q, want %q", info, want)
			}
			// Every narinfo is published after the narinfos it refers to.
			published := map[string]bool{}
			for _, e := range events {
				if e.Kind != EventPublished {
					continue
				}
				for _, pi := range store.Infos {
					if pi.Path != e.Path {
						continue
					}
					for _, r := range pi.References {
						if r != pi.Path && !published[r.String()] {
							t.Errorf("%s published before its reference %s", pi.Path, r)
						}
					}
				}
				published[e.Path.String()] = true
			}
			// The NAR is named by its NarHash, with the extension.
			ni := readNarInfo(t, b, store.Infos[0].Path.Hash+".narinfo", store.Dir)
			if want := "nar/" + nixbase32(ni.NarHash) + ".nar" + uri.Extension(); ni.URL != want {
				t.Errorf("URL %s, want %s", ni.URL, want)
			}
		})
	}
}

func TestSecondPushOnlyChecks(t *testing.T) {
	store := makeTestStore(t, 2, chainSpecs(8, 5000))
	b := dirBucket(t)
	uri := mustURI(t, "file://"+b.Path()+"?write-nar-listing=true")
	if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos}); err != nil {
		t.Fatal(err)
	}
	c := newCounting(b)
	sum, err := Push(context.Background(), PushOptions{URI: uri, Bucket: c, Paths: store.Infos})
	if err != nil {
		t.Fatal(err)
	}
	ops := c.snapshot()
	if ops["put"] != 0 || ops["delete"] != 0 || sum.Pushed != 0 || sum.Skipped != len(store.Infos) || sum.BytesOut != 0 {
		t.Errorf("second push: ops %v, summary %+v", ops, sum)
	}
	// One existence check per object (narinfo, NAR, listing), plus
	// reading nix-cache-info.
	if ops["stat"] != 3*len(store.Infos) || ops["get"] != 1 {
		t.Errorf("second push: ops %v, want %d stats and 1 get", ops, 3*len(store.Infos))
	}
	// The plan says all of it is there.
	pl, err := PlanPush(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
	if err != nil {
		t.Fatal(err)
	}
	if tot := pl.Totals(); tot.Send != 0 || tot.Present != 1+3*len(store.Infos) {
		t.Errorf("plan of a complete cache: %+v", tot)
	}
}

// TestPushRepairsCache: a NAR or a listing deleted from the cache is sent
// again, and only that path's objects; the plan says so beforehand.
func TestPushRepairsCache(t *testing.T) {
	store := makeTestStore(t, 2, chainSpecs(6, 5000))
	b := dirBucket(t)
	uri := mustURI(t, "file://"+b.Path()+"?write-nar-listing=true")
	if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	victimNAR, victimLS := store.Infos[1], store.Infos[4]
	if err := b.Delete(ctx, uri.NARKey(victimNAR.NarHash)); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, ListingKey(victimLS.Path)); err != nil {
		t.Fatal(err)
	}
	pl, err := PlanPush(ctx, PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
	if err != nil {
		t.Fatal(err)
	}
	var send []string
	for _, o := range pl.Sending() {
		send = append(send, o.Kind+" "+o.Source)
	}
	want := []string{"nar " + victimNAR.Path.String(), "listing " + victimNAR.Path.String(), "narinfo " + victimNAR.Path.String(),
		"nar " + victimLS.Path.String(), "listing " + victimLS.Path.String(), "narinfo " + victimLS.Path.String()}
	sort.Strings(send)
	sort.Strings(want)
	if !slices.Equal(send, want) {
		t.Errorf("plan after deleting a NAR and a listing sends %v, want %v", send, want)
	}
	c := newCounting(b)
	sum, err := Push(ctx, PushOptions{URI: uri, Bucket: c, Paths: store.Infos, Plan: pl})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pushed != 2 || c.snapshot()["put"] != 6 {
		t.Errorf("repair push: %+v, ops %v", sum, c.snapshot())
	}
	for _, pc := range Verify(ctx, VerifyOptions{URI: uri, Bucket: b, Paths: pl.Paths()}) {
		for _, pr := range pc.Problems {
			if !strings.Contains(pr, "no valid signature") { // the test store is unsigned
				t.Errorf("after repair: %s: %s", pc.Path, pr)
			}
		}
	}
}

func TestPushCompletesPartialCache(t *testing.T) {
	// A cache holding the first paths (an earlier push of part of the
	// closure) gets only the rest.
	store := makeTestStore(t, 3, chainSpecs(6, 3000))
	b := dirBucket(t)
	uri := mustURI(t, "file://"+b.Path())
	part, err := Closure(store.Infos, []nixstore.StorePath{store.Infos[0].Path}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: part}); err != nil {
		t.Fatal(err)
	}
	sum, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pushed != len(store.Infos)-len(part) || sum.Skipped != len(part) {
		t.Errorf("summary %+v", sum)
	}
	checkConsistent(t, b, store.Dir, true, false, nil)
}

func TestCorruptPathNotPublished(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"same size", func(t *testing.T, path string) {
			f := filepath.Join(path, "share", "f0")
			data, _ := os.ReadFile(f)
			data[len(data)/2] ^= 1
			os.WriteFile(f, data, 0o644)
		}},
		{"larger", func(t *testing.T, path string) {
			os.WriteFile(filepath.Join(path, "extra"), make([]byte, 3*FrameSize), 0o644)
		}},
		{"smaller", func(t *testing.T, path string) {
			os.Remove(filepath.Join(path, "share", "f1"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := makeTestStore(t, 4, chainSpecs(5, 3000, FrameSize+100))
			bad := store.Infos[2]
			// Let the other paths be sorted by path: find the one at index 2 of
			// the chain by name.
			for _, pi := range store.Infos {
				if pi.Path.Name == "pkg-2" {
					bad = pi
				}
			}
			tc.change(t, bad.Path.String())
			b := dirBucket(t)
			uri := mustURI(t, "file://"+b.Path())
			_, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos, Jobs: 1})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != bad.Path || !strings.Contains(err.Error(), bad.Path.String()) {
				t.Fatalf("err = %v, want a CorruptError naming %s", err, bad.Path)
			}
			if exists(t, b, bad.Path.Hash+".narinfo") {
				t.Errorf("the corrupt path's narinfo was published")
			}
			if exists(t, b, "nar/"+nixbase32(bad.NarHash)+".nar.zst") {
				t.Errorf("the corrupt path's NAR was left in the cache")
			}
			// Nothing that refers to it either, and no temporary files.
			checkConsistent(t, b, store.Dir, true, false, nil)
			filepath.Walk(b.Path(), func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.Contains(filepath.Base(p), "releng-tmp") {
					t.Errorf("temporary file left: %s", p)
				}
				return nil
			})
		})
	}
}

func TestResumeReusesUploadedNAR(t *testing.T) {
	b := dirBucket(t)
	checkResumeReuses(t, b, mustURI(t, "file://"+b.Path()))
}

// TestResumeReusesUploadedNARFileCache: a file:// cache as the CLI opens it
// keeps no checksums; the NARs of an interrupted push are hashed back and
// reused all the same.
func TestResumeReusesUploadedNARFileCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	uri := mustURI(t, "file://"+dir)
	b, err := uri.Open(OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResumeReuses(t, b, uri)
	if _, err := os.Stat(filepath.Join(dir, ".releng-meta")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file:// cache keeps metadata records: %v", err)
	}
}

// checkResumeReuses pushes a closure to b, deletes the narinfos as if the
// push was killed after the NARs, and checks a second push reuses every NAR.
func checkResumeReuses(t *testing.T, b bucket.Bucket, uri *StoreURI) {
	t.Helper()
	store := makeTestStore(t, 5, chainSpecs(3, 4000))
	if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos}); err != nil {
		t.Fatal(err)
	}
	for _, k := range narInfoKeys(t, b) {
		if err := b.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	c := newCounting(b)
	var reused int
	sum, err := Push(context.Background(), PushOptions{URI: uri, Bucket: c, Paths: store.Infos, OnEvent: func(e Event) {
		if e.Kind == EventNARDone && e.Reused {
			reused++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if reused != len(store.Infos) || c.snapshot()["put"] != len(store.Infos) || sum.Pushed != len(store.Infos) {
		t.Errorf("reused %d NARs, ops %v, summary %+v", reused, c.snapshot(), sum)
	}
	checkConsistent(t, b, store.Dir, true, false, nil)
}

func TestPushRefusesBadClosure(t *testing.T) {
	store := makeTestStore(t, 6, chainSpecs(3, 100))
	missingRef := append([]nixstore.PathInfo{}, store.Infos[1:]...)
	noHash := append([]nixstore.PathInfo{}, store.Infos...)
	noHash[1].NarHash = nixstore.Hash{}
	gone := []nixstore.PathInfo{store.Infos[0]}
	gone[0].Path.Name = "gone"
	gone[0].References = nil
	cycle := append([]nixstore.PathInfo{}, store.Infos...)
	for i := range cycle {
		cycle[i].References = []nixstore.StorePath{cycle[(i+1)%len(cycle)].Path}
	}
	for _, tc := range []struct {
		name  string
		infos []nixstore.PathInfo
		want  string
	}{
		{"missing reference", missingRef, "not in it"},
		{"no hash", noHash, "no narHash"},
		{"not on disk", gone, "does not exist on disk"},
		{"cycle", cycle, "reference cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := dirBucket(t)
			_, err := Push(context.Background(), PushOptions{URI: mustURI(t, "file://"+b.Path()), Bucket: b, Paths: tc.infos})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if objs, _ := b.List(context.Background(), "", bucket.ListOptions{Recursive: true}); len(objs) != 0 {
				t.Errorf("published %v", objs)
			}
		})
	}
}

func TestCacheInfoStoreDirMismatch(t *testing.T) {
	store := makeTestStore(t, 7, chainSpecs(1, 100))
	b := dirBucket(t)
	if _, err := b.Put(context.Background(), CacheInfoKey, strings.NewReader("StoreDir: /gnu/store\n"), -1, bucket.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Push(context.Background(), PushOptions{URI: mustURI(t, "file://"+b.Path()), Bucket: b, Paths: store.Infos})
	if err == nil || !strings.Contains(err.Error(), "/gnu/store") {
		t.Fatalf("err = %v", err)
	}
	if len(narInfoKeys(t, b)) != 0 {
		t.Error("published into a cache of another store")
	}
}

// forbiddenBucket answers 403 instead of 404 for missing objects, as S3
// does for a caller that may read but not list the bucket.
type forbiddenBucket struct{ bucket.Bucket }

func (f forbiddenBucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	info, err := f.Bucket.Stat(ctx, key)
	if errors.Is(err, bucket.ErrNotFound) {
		return info, &bucket.Error{Op: "stat", URL: key, Err: &bucket.ServerError{StatusCode: 403, Code: "AccessDenied"}}
	}
	return info, err
}

func (f forbiddenBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := f.Bucket.Get(ctx, key)
	if errors.Is(err, bucket.ErrNotFound) {
		return nil, &bucket.Error{Op: "get", URL: key, Err: &bucket.ServerError{StatusCode: 403, Code: "AccessDenied"}}
	}
	return rc, err
}

func TestForbiddenCountsAsMissing(t *testing.T) {
	store := makeTestStore(t, 8, chainSpecs(3, 100))
	b := dirBucket(t)
	sum, err := Push(context.Background(), PushOptions{URI: mustURI(t, "file://"+b.Path()), Bucket: forbiddenBucket{b}, Paths: store.Infos})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pushed != 3 || !exists(t, b, CacheInfoKey) {
		t.Errorf("summary %+v", sum)
	}
	checkConsistent(t, b, store.Dir, true, false, nil)
}
