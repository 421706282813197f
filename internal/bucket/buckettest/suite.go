// Package buckettest is the conformance suite every bucket.Bucket — the
// directory and S3 implementations and the decorators around them — must
// pass, plus test helpers: deterministic data and an HTTP proxy that
// records requests and injects faults in front of a real server.
package buckettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
)

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// SHA256 is the lowercase hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// stream hides every method of r but Read, so a body cannot be seeked,
// sized or rewound.
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// Stream returns b as a plain io.Reader.
func Stream(b []byte) io.Reader { return stream{bytes.NewReader(b)} }

// failingReader yields data and then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// Put stores data under key, failing t on error.
func Put(t testing.TB, b bucket.Bucket, key string, data []byte, opts bucket.PutOptions) bucket.ObjectInfo {
	t.Helper()
	info, err := b.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

// Read returns the bytes of key, failing t on error.
func Read(t testing.TB, b bucket.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

// CheckContent fails t unless key holds exactly want.
func CheckContent(t testing.TB, b bucket.Bucket, key string, want []byte) {
	t.Helper()
	got := Read(t, b, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", key, len(got), SHA256(got), len(want), SHA256(want))
	}
}

// CheckMissing fails t unless Stat and Get of key say ErrNotFound.
func CheckMissing(t testing.TB, b bucket.Bucket, key string) {
	t.Helper()
	ctx := context.Background()
	if info, err := b.Stat(ctx, key); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("stat %s: got %+v, %v; want ErrNotFound", key, info, err)
	}
	if rc, err := b.Get(ctx, key); !errors.Is(err, bucket.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("get %s: got %v; want ErrNotFound", key, err)
	}
}

func keys(infos []bucket.ObjectInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Key)
	}
	return out
}

// Run runs the suite. newBucket must return a new, empty bucket for each
// call; it should use the smallest part size (bucket.MinPartSize) so the
// multipart paths of a remote store are exercised with objects of tens of
// MB.
func Run(t *testing.T, newBucket func(t *testing.T) bucket.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bucket.Bucket)
	}{
		{"PutStatGetDelete", testPutStatGetDelete},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"EmptyObject", testEmpty},
		{"List", testList},
		{"ContentTypeEncoding", testContentTypeEncoding},
		{"KeyValidation", testKeyValidation},
		{"SizeMismatch", testSizeMismatch},
		{"ChecksumMismatch", testChecksumMismatch},
		{"BodyError", testBodyError},
		{"LargeMultipart", testLarge},
		{"UnknownLength", testUnknownLength},
		{"Resume", testResume},
		{"ResumeAfterAbort", testResumeAfterAbort},
		{"ResumeChangedBody", testResumeChangedBody},
		{"ResumeSmall", testResumeSmall},
		{"ConcurrentSmall", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBucket(t)) })
	}
}

func testPutStatGetDelete(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	data := []byte("hello, bucket\n")
	key := "a/b/c.txt"
	info := Put(t, b, key, data, bucket.PutOptions{})
	if info.Key != key || info.Size != int64(len(data)) || info.SHA256 != SHA256(data) {
		t.Errorf("put returned %+v; want key %s, size %d, sha256 %s", info, key, len(data), SHA256(data))
	}
	st, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != key || st.Size != int64(len(data)) || st.SHA256 != SHA256(data) || st.ModTime.IsZero() {
		t.Errorf("stat = %+v; want key %s, size %d, sha256 %s, a mod time", st, key, len(data), SHA256(data))
	}
	if ok, err := bucket.Exists(ctx, b, key, false); !ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}
	CheckContent(t, b, key, data)
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	CheckMissing(t, b, key)
	if err := b.Delete(ctx, key); err != nil {
		t.Errorf("deleting a missing key: %v; want no error", err)
	}
	if l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil || len(l) != 0 {
		t.Errorf("after delete, list = %v, %v; want nothing", keys(l), err)
	}
}

func testOverwrite(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	v1, v2 := []byte("first version, longer"), []byte("second")
	Put(t, b, "x/obj", v1, bucket.PutOptions{ContentType: "text/plain"})
	Put(t, b, "x/obj", v2, bucket.PutOptions{SHA256: SHA256(v2)})
	st, err := b.Stat(ctx, "x/obj")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(v2)) || st.SHA256 != SHA256(v2) {
		t.Errorf("stat after overwrite = %+v; want size %d sha256 %s", st, len(v2), SHA256(v2))
	}
	CheckContent(t, b, "x/obj", v2)
	if !bucket.SameObject(st, int64(len(v2)), SHA256(v2)) || bucket.SameObject(st, int64(len(v1)), SHA256(v1)) {
		t.Errorf("SameObject is wrong for %+v", st)
	}
}

// checkNeverWritten checks what b says of a key never written: not
// found, naming the key, not worth retrying.
func checkNeverWritten(t *testing.T, b bucket.Bucket) {
	t.Helper()
	ctx := context.Background()
	CheckMissing(t, b, "never/written")
	_, err := b.Stat(ctx, "never/written")
	if !strings.Contains(err.Error(), "never/written") {
		t.Errorf("error %q does not name the key", err)
	}
	if bucket.IsTransient(err) {
		t.Errorf("not found is classified transient: %v", err)
	}
	if ok, err := bucket.Exists(ctx, b, "never/written", false); ok || err != nil {
		t.Errorf("Exists = %v, %v; want false, nil", ok, err)
	}
}

func testNotFound(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	checkNeverWritten(t, b)
	// A key below an existing object, and a "directory" of objects, are
	// not objects either.
	Put(t, b, "file", []byte("x"), bucket.PutOptions{})
	Put(t, b, "dir/inner", []byte("x"), bucket.PutOptions{})
	CheckMissing(t, b, "file/below")
	CheckMissing(t, b, "dir")
	if err := b.Delete(ctx, "dir"); err != nil {
		t.Errorf("delete of a non-object prefix: %v", err)
	}
	CheckContent(t, b, "dir/inner", []byte("x"))
}

func testEmpty(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	info := Put(t, b, "empty", nil, bucket.PutOptions{})
	if info.Size != 0 || info.SHA256 != SHA256(nil) {
		t.Errorf("put empty = %+v", info)
	}
	st, err := b.Stat(ctx, "empty")
	if err != nil || st.Size != 0 || st.SHA256 != SHA256(nil) {
		t.Errorf("stat empty = %+v, %v", st, err)
	}
	CheckContent(t, b, "empty", nil)
	if _, err := b.Put(ctx, "empty-stream", Stream(nil), -1, bucket.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	CheckContent(t, b, "empty-stream", nil)
}

func testList(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	objs := map[string]string{
		"a.txt": "a", "d/1": "one", "d/2": "two!", "d/sub/3": "three", "d-x": "dash", "e/f/g": "deep",
	}
	for k, v := range objs {
		Put(t, b, k, []byte(v), bucket.PutOptions{})
	}
	tests := []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"", true, []string{"a.txt", "d-x", "d/1", "d/2", "d/sub/3", "e/f/g"}},
		{"", false, []string{"a.txt", "d-x", "d/", "e/"}},
		{"d/", true, []string{"d/1", "d/2", "d/sub/3"}},
		{"d/", false, []string{"d/1", "d/2", "d/sub/"}},
		{"d", true, []string{"d-x", "d/1", "d/2", "d/sub/3"}},
		{"d", false, []string{"d-x", "d/"}},
		{"d/s", false, []string{"d/sub/"}},
		{"d/s", true, []string{"d/sub/3"}},
		{"e/f/", false, []string{"e/f/g"}},
		{"e/f/g", true, []string{"e/f/g"}},
		{"nothing/", true, nil},
		{"zz", false, nil},
	}
	for _, tc := range tests {
		got, err := b.List(ctx, tc.prefix, bucket.ListOptions{Recursive: tc.recursive})
		if err != nil {
			t.Errorf("list %q recursive=%v: %v", tc.prefix, tc.recursive, err)
			continue
		}
		if !slices.Equal(keys(got), tc.want) {
			t.Errorf("list %q recursive=%v = %q; want %q", tc.prefix, tc.recursive, keys(got), tc.want)
		}
		for _, o := range got {
			if o.IsPrefix != strings.HasSuffix(o.Key, "/") {
				t.Errorf("list %q: %q has IsPrefix=%v", tc.prefix, o.Key, o.IsPrefix)
			}
			if !o.IsPrefix && o.Size != int64(len(objs[o.Key])) {
				t.Errorf("list %q: %q has size %d, want %d", tc.prefix, o.Key, o.Size, len(objs[o.Key]))
			}
		}
	}
	got, err := b.List(ctx, "", bucket.ListOptions{Recursive: true, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		if want := SHA256([]byte(objs[o.Key])); o.SHA256 != want {
			t.Errorf("list with SHA256: %s has %q, want %s", o.Key, o.SHA256, want)
		}
	}
	if _, err := b.List(ctx, "/abs", bucket.ListOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Errorf("list with prefix /abs: %v; want ErrInvalidKey", err)
	}
	if _, err := b.List(ctx, "a/../", bucket.ListOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Errorf("list with prefix a/../: %v; want ErrInvalidKey", err)
	}
}

func testContentTypeEncoding(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	checkContentTypes(t, b, b)
	// A stream of unknown length keeps them too.
	opts := bucket.PutOptions{ContentType: "application/x-nix-nar", ContentEncoding: "zstd"}
	if _, err := b.Put(ctx, "nar/s.nar.zst", Stream([]byte("nar")), -1, opts); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Stat(ctx, "nar/s.nar.zst"); err != nil || st.ContentType != opts.ContentType || st.ContentEncoding != opts.ContentEncoding {
		t.Errorf("stream: stat = %+v, %v", st, err)
	}
}

// checkContentTypes stores objects with a Content-Type and
// Content-Encoding through w and checks that r reports them and returns
// the bytes as stored.
func checkContentTypes(t *testing.T, w, r bucket.Bucket) {
	t.Helper()
	ctx := context.Background()
	// Bytes that are a valid gzip stream: they must come back as stored,
	// not decoded by an HTTP client.
	gz := []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00}
	tests := []struct {
		key  string
		opts bucket.PutOptions
		data []byte
	}{
		{"x.narinfo", bucket.PutOptions{ContentType: "text/x-nix-narinfo", ContentEncoding: "zstd"}, []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}},
		{"x.ls", bucket.PutOptions{ContentType: "application/json", ContentEncoding: "gzip"}, gz},
		{"nix-cache-info", bucket.PutOptions{ContentType: "text/x-nix-cache-info"}, []byte("StoreDir: /nix/store\n")},
		{"manual/index.html", bucket.PutOptions{ContentType: "text/html; charset=utf-8"}, []byte("<p>hi</p>")},
	}
	for _, tc := range tests {
		Put(t, w, tc.key, tc.data, tc.opts)
		st, err := r.Stat(ctx, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if st.ContentType != tc.opts.ContentType || st.ContentEncoding != tc.opts.ContentEncoding {
			t.Errorf("%s: stat has type %q encoding %q; want %q %q", tc.key, st.ContentType, st.ContentEncoding, tc.opts.ContentType, tc.opts.ContentEncoding)
		}
		CheckContent(t, r, tc.key, tc.data)
	}
}

// BadKeys are keys every bucket must refuse.
var BadKeys = []string{"", "/abs", "trailing/", "a//b", "..", ".", "a/../b", "../escape", "a/./b", "a/..", "nul\x00byte", "back\\slash", "ctl\nline", "\xff\xfe", strings.Repeat("k", bucket.MaxKeyLen+1)}

func testKeyValidation(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	for _, key := range BadKeys {
		ops := map[string]error{}
		_, ops["stat"] = b.Stat(ctx, key)
		rc, err := b.Get(ctx, key)
		if rc != nil {
			rc.Close()
		}
		ops["get"] = err
		_, ops["put"] = b.Put(ctx, key, strings.NewReader("x"), 1, bucket.PutOptions{})
		ops["delete"] = b.Delete(ctx, key)
		_, ops["put resumable"] = b.PutResumable(ctx, key, strings.NewReader("x"), 1, bucket.ResumableOptions{})
		ops["abort upload"] = b.AbortUpload(ctx, key, "id")
		for op, err := range ops {
			if !errors.Is(err, bucket.ErrInvalidKey) {
				t.Errorf("%s %q: %v; want ErrInvalidKey", op, key, err)
				continue
			}
			if q := fmt.Sprintf("%q", key); len(key) < 100 && !strings.Contains(err.Error(), q) {
				t.Errorf("%s %q: error %q does not name the key as %s", op, key, err, q)
			}
		}
	}
	if l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil || len(l) != 0 {
		t.Errorf("after refused keys, list = %q, %v; want nothing", keys(l), err)
	}
	// Odd but valid keys work.
	for _, key := range []string{"with space/é ü.txt", "dots.../..x/x..", "+plus=eq&amp;?q#frag", ".hidden/.file"} {
		Put(t, b, key, []byte(key), bucket.PutOptions{})
		CheckContent(t, b, key, []byte(key))
	}
}

func testSizeMismatch(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	big := Data(7, bucket.MinPartSize*2+100)
	tests := []struct {
		name string
		data []byte
		size int64
	}{
		{"short", []byte("12345"), 10},
		{"long", []byte("1234567890"), 5},
		{"short multipart", big, int64(len(big)) + 1000},
		{"long multipart", big, int64(len(big)) - 1000},
	}
	for _, tc := range tests {
		key := "mismatch/" + strings.ReplaceAll(tc.name, " ", "-")
		_, err := b.Put(ctx, key, Stream(tc.data), tc.size, bucket.PutOptions{})
		if !errors.Is(err, bucket.ErrSizeMismatch) {
			t.Errorf("%s: put = %v; want ErrSizeMismatch", tc.name, err)
		}
		CheckMissing(t, b, key)
	}
}

func testChecksumMismatch(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	old := []byte("the good old object")
	Put(t, b, "sum/obj", old, bucket.PutOptions{})
	wrong := SHA256([]byte("something else"))
	for _, data := range [][]byte{[]byte("new small body"), Data(3, bucket.MinPartSize+10)} {
		_, err := b.Put(ctx, "sum/obj", bytes.NewReader(data), int64(len(data)), bucket.PutOptions{SHA256: wrong})
		if !errors.Is(err, bucket.ErrChecksumMismatch) {
			t.Errorf("put %d bytes with a wrong sha256: %v; want ErrChecksumMismatch", len(data), err)
		}
		_, err = b.Put(ctx, "sum/stream", Stream(data), -1, bucket.PutOptions{SHA256: wrong})
		if !errors.Is(err, bucket.ErrChecksumMismatch) {
			t.Errorf("stream %d bytes with a wrong sha256: %v; want ErrChecksumMismatch", len(data), err)
		}
	}
	CheckContent(t, b, "sum/obj", old)
	CheckMissing(t, b, "sum/stream")
	if _, err := b.Put(ctx, "sum/bad", strings.NewReader("x"), 1, bucket.PutOptions{SHA256: "not-hex"}); err == nil {
		t.Error("a malformed sha256 was accepted")
	}
}

func testBodyError(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	old := []byte("previous")
	Put(t, b, "body/obj", old, bucket.PutOptions{})
	boom := errors.New("source exploded")
	for _, n := range []int{10, bucket.MinPartSize + 10} {
		for _, size := range []int64{-1, int64(n) * 2} {
			_, err := b.Put(ctx, "body/obj", &failingReader{data: Data(1, n), err: boom}, size, bucket.PutOptions{})
			var be *bucket.BodyError
			if !errors.As(err, &be) || !errors.Is(err, boom) {
				t.Errorf("after %d bytes (size %d): put = %v; want a *BodyError wrapping %v", n, size, err, boom)
			}
			if bucket.IsTransient(err) {
				t.Errorf("a body error is classified transient: %v", err)
			}
		}
	}
	CheckContent(t, b, "body/obj", old)
	_, err := b.Put(ctx, "body/new", &failingReader{data: Data(1, bucket.MinPartSize+10), err: boom}, -1, bucket.PutOptions{})
	if err == nil {
		t.Fatal("put of a failing stream succeeded")
	}
	CheckMissing(t, b, "body/new")
}

func testLarge(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	data := Data(40, 40<<20)
	info, err := b.Put(ctx, "large/40MB.bin", bytes.NewReader(data), int64(len(data)), bucket.PutOptions{SHA256: SHA256(data), ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != SHA256(data) {
		t.Errorf("put = %+v", info)
	}
	st, err := b.Stat(ctx, "large/40MB.bin")
	if err != nil || st.Size != int64(len(data)) || st.SHA256 != SHA256(data) {
		t.Errorf("stat = %+v, %v", st, err)
	}
	CheckContent(t, b, "large/40MB.bin", data)
}

func testUnknownLength(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	for i, n := range []int{1, 1024, bucket.MinPartSize, bucket.MinPartSize + 1, 12<<20 + 7} {
		data := Data(uint64(i), n)
		key := fmt.Sprintf("stream/%d", n)
		pr, pw := io.Pipe()
		go func() {
			// Dribble it out, as a compressor would.
			for d := data; len(d) > 0; {
				k := min(len(d), 100_000)
				if _, err := pw.Write(d[:k]); err != nil {
					return
				}
				d = d[k:]
			}
			pw.Close()
		}()
		info, err := b.Put(ctx, key, pr, -1, bucket.PutOptions{SizeHint: int64(n)})
		if err != nil {
			t.Fatalf("stream of %d bytes: %v", n, err)
		}
		if info.Size != int64(n) || info.SHA256 != SHA256(data) {
			t.Errorf("stream of %d bytes: put = %+v; want sha256 %s", n, info, SHA256(data))
		}
		if st, err := b.Stat(ctx, key); err != nil || st.Size != int64(n) {
			t.Errorf("stream of %d bytes: stat = %+v, %v", n, st, err)
		}
		CheckContent(t, b, key, data)
	}
	// With the expected checksum given, a stream records it whatever its
	// size.
	data := Data(99, bucket.MinPartSize*2+5)
	if _, err := b.Put(ctx, "stream/summed", Stream(data), -1, bucket.PutOptions{SHA256: SHA256(data)}); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Stat(ctx, "stream/summed"); err != nil || st.SHA256 != SHA256(data) {
		t.Errorf("summed stream: stat = %+v, %v; want sha256 %s", st, err, SHA256(data))
	}
}

var errCrash = errors.New("simulated crash")

// journal records what PutResumable reports, as the upload journal does.
type journal struct {
	mu     sync.Mutex
	state  bucket.UploadState
	starts int
	sent   []int
	crashN int // fail OnPart after this many parts (0: never)
}

func (j *journal) opts(sha string) bucket.ResumableOptions {
	j.mu.Lock()
	defer j.mu.Unlock()
	return bucket.ResumableOptions{
		PutOptions: bucket.PutOptions{SHA256: sha, ContentType: "application/x-xz"},
		State:      bucket.UploadState{ID: j.state.ID, PartSize: j.state.PartSize, SHA256: j.state.SHA256, Parts: slices.Clone(j.state.Parts)},
		OnStart: func(s bucket.UploadState) error {
			j.mu.Lock()
			defer j.mu.Unlock()
			j.starts++
			j.state = s
			return nil
		},
		OnPart: func(p bucket.Part) error {
			j.mu.Lock()
			defer j.mu.Unlock()
			j.state.Parts = append(j.state.Parts, p)
			j.sent = append(j.sent, p.Number)
			if j.crashN > 0 && len(j.sent) >= j.crashN {
				return errCrash
			}
			return nil
		},
	}
}

func testResume(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	const parts = 5
	data := Data(5, parts*bucket.MinPartSize+123)
	key := "release/2.93.0/lix-2.93.0.tar.xz"
	j := &journal{crashN: 2, state: bucket.UploadState{PartSize: bucket.MinPartSize}}
	_, err := b.PutResumable(ctx, key, bytes.NewReader(data), int64(len(data)), j.opts(SHA256(data)))
	if !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v; want the simulated crash", err)
	}
	if j.starts != 1 || j.state.ID == "" || j.state.PartSize != bucket.MinPartSize {
		t.Fatalf("OnStart: %d calls, state %+v", j.starts, j.state)
	}
	first := slices.Clone(j.sent)
	CheckMissing(t, b, key)
	if l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil || len(l) != 0 {
		t.Errorf("an unfinished upload shows in the listing: %q, %v", keys(l), err)
	}

	// Resume: only the parts not sent are sent, the upload is the same.
	j.crashN, j.sent = 0, nil
	info, err := b.PutResumable(ctx, key, bytes.NewReader(data), int64(len(data)), j.opts(SHA256(data)))
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if j.starts != 1 {
		t.Errorf("resume started a new upload (%d starts)", j.starts)
	}
	for _, n := range j.sent {
		if slices.Contains(first, n) {
			t.Errorf("resume sent part %d again (first attempt sent %v, resume %v)", n, first, j.sent)
		}
	}
	if len(j.sent) > parts+1-len(first) {
		t.Errorf("resume sent %d parts %v; at most %d were missing", len(j.sent), j.sent, parts+1-len(first))
	}
	if info.Size != int64(len(data)) || info.SHA256 != SHA256(data) {
		t.Errorf("put resumable = %+v", info)
	}
	st, err := b.Stat(ctx, key)
	if err != nil || st.Size != int64(len(data)) || st.SHA256 != SHA256(data) || st.ContentType != "application/x-xz" {
		t.Errorf("stat = %+v, %v", st, err)
	}
	CheckContent(t, b, key, data)
	if l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil || !slices.Equal(keys(l), []string{key}) {
		t.Errorf("after completion, list = %q, %v", keys(l), err)
	}
	// The finished upload is gone: aborting it is harmless.
	if err := b.AbortUpload(ctx, key, j.state.ID); err != nil {
		t.Errorf("abort of a completed upload: %v", err)
	}
	CheckContent(t, b, key, data)
}

func testResumeAfterAbort(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	data := Data(6, 2*bucket.MinPartSize+1)
	key := "aborted.bin"
	j := &journal{crashN: 1, state: bucket.UploadState{PartSize: bucket.MinPartSize}}
	if _, err := b.PutResumable(ctx, key, bytes.NewReader(data), int64(len(data)), j.opts("")); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	old := j.state.ID
	if err := b.AbortUpload(ctx, key, old); err != nil {
		t.Fatal(err)
	}
	if err := b.AbortUpload(ctx, key, old); err != nil {
		t.Errorf("second abort: %v", err)
	}
	if err := b.AbortUpload(ctx, key, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Errorf("abort of an unknown upload: %v", err)
	}
	CheckMissing(t, b, key)
	// Resuming the aborted upload starts a new one and sends everything.
	j.crashN, j.sent = 0, nil
	if _, err := b.PutResumable(ctx, key, bytes.NewReader(data), int64(len(data)), j.opts("")); err != nil {
		t.Fatal(err)
	}
	if j.starts != 2 || j.state.ID == old {
		t.Errorf("after abort: %d starts, id %q (old %q); want a new upload", j.starts, j.state.ID, old)
	}
	slices.Sort(j.sent)
	if !slices.Equal(j.sent, []int{1, 2, 3}) {
		t.Errorf("after abort, sent parts %v; want all of 1..3", j.sent)
	}
	CheckContent(t, b, key, data)
	if st, err := b.Stat(ctx, key); err != nil || st.SHA256 != SHA256(data) {
		t.Errorf("stat = %+v, %v; want sha256 %s", st, err, SHA256(data))
	}
}

// testResumeChangedBody: the file changed between the interrupted
// attempt and the resume (a rebuilt artifact); the object ends up with the
// new bytes and the new checksum, never a mix.
func testResumeChangedBody(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	for _, withSum := range []bool{false, true} {
		key := fmt.Sprintf("changed-%v.tar.xz", withSum)
		a := Data(11, 4*bucket.MinPartSize+5)
		sum := func(d []byte) string {
			if withSum {
				return SHA256(d)
			}
			return ""
		}
		j := &journal{crashN: 2, state: bucket.UploadState{PartSize: bucket.MinPartSize}}
		if _, err := b.PutResumable(ctx, key, bytes.NewReader(a), int64(len(a)), j.opts(sum(a))); !errors.Is(err, errCrash) {
			t.Fatalf("first attempt: %v", err)
		}
		c := bytes.Clone(a)
		c[10] ^= 0xff                      // in a part already sent
		c[3*bucket.MinPartSize+10] ^= 0xff // in a part not sent yet
		j.crashN = 0
		if _, err := b.PutResumable(ctx, key, bytes.NewReader(c), int64(len(c)), j.opts(sum(c))); err != nil {
			t.Fatalf("resume with a changed body: %v", err)
		}
		CheckContent(t, b, key, c)
		if st, err := b.Stat(ctx, key); err != nil || st.SHA256 != SHA256(c) {
			t.Errorf("stat = %+v, %v; want the new body's sha256 %s", st, err, SHA256(c))
		}
	}
}

func testResumeSmall(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 1000} {
		data := Data(uint64(n), n)
		key := fmt.Sprintf("small/%d", n)
		j := &journal{}
		if _, err := b.PutResumable(ctx, key, bytes.NewReader(data), int64(n), j.opts(SHA256(data))); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		CheckContent(t, b, key, data)
	}
	data := []byte("0123456789")
	_, err := b.PutResumable(ctx, "small/short", bytes.NewReader(data), 20, bucket.ResumableOptions{})
	if !errors.Is(err, bucket.ErrSizeMismatch) {
		t.Errorf("body shorter than size: %v; want ErrSizeMismatch", err)
	}
	_, err = b.PutResumable(ctx, "small/wrong", bytes.NewReader(data), 10, bucket.ResumableOptions{PutOptions: bucket.PutOptions{SHA256: SHA256([]byte("x"))}})
	if !errors.Is(err, bucket.ErrChecksumMismatch) {
		t.Errorf("wrong sha256: %v; want ErrChecksumMismatch", err)
	}
	CheckMissing(t, b, "small/wrong")
}

func testConcurrent(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			data := Data(uint64(i), 100+i)
			_, err := b.Put(ctx, fmt.Sprintf("many/%03d", i), bytes.NewReader(data), int64(len(data)), bucket.PutOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	l, err := b.List(ctx, "many/", bucket.ListOptions{Recursive: true, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != n {
		t.Fatalf("listed %d objects, want %d", len(l), n)
	}
	for i, o := range l {
		if want := SHA256(Data(uint64(i), 100+i)); o.Key != fmt.Sprintf("many/%03d", i) || o.SHA256 != want {
			t.Errorf("object %d: %+v; want sha256 %s", i, o, want)
		}
	}
}
