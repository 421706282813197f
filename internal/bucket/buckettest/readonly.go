package buckettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
)

// RunReadOnly runs the part of the suite that applies to a read-only store
// (bucket.ErrReadOnly writes, no listing), such as one read over HTTP.
// newPair must return, for each call, a new empty store as writer (a
// writable bucket: S3) and reader (the read-only bucket reading the same
// objects).
func RunReadOnly(t *testing.T, newPair func(t *testing.T) (writer, reader bucket.Bucket)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, w, r bucket.Bucket)
	}{
		{"StatGet", testReadStatGet},
		{"NotFound", testReadNotFound},
		{"ContentTypeEncoding", testReadContentTypeEncoding},
		{"KeyValidation", testReadKeyValidation},
		{"WritesRefused", testWritesRefused},
		{"NoListing", testNoListing},
		{"LargeObject", testReadLarge},
		{"ConcurrentReads", testConcurrentReads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, r := newPair(t)
			tc.fn(t, w, r)
		})
	}
}

// checkSHA256 fails t unless info's SHA256 is unknown or right: a
// read-only store reports one only if the server sends it.
func checkSHA256(t testing.TB, info bucket.ObjectInfo, data []byte) {
	t.Helper()
	if info.SHA256 != "" && info.SHA256 != SHA256(data) {
		t.Errorf("%s: sha256 %s; want %s or unknown", info.Key, info.SHA256, SHA256(data))
	}
}

func testReadStatGet(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	objs := map[string][]byte{
		"a/b/c.txt":                    []byte("hello, bucket\n"),
		"empty":                        nil,
		"nix-cache-info":               []byte("StoreDir: /nix/store\n"),
		"odd/a b+c%d?e#f&g=h;i,j'k(l)": []byte("a key with characters a URL escapes"),
		"odd/ünïcödé":                  []byte("utf-8"),
	}
	for k, v := range objs {
		Put(t, w, k, v, bucket.PutOptions{})
	}
	for k, v := range objs {
		st, err := r.Stat(ctx, k)
		if err != nil {
			t.Errorf("stat %q: %v", k, err)
			continue
		}
		if st.Key != k || st.Size != int64(len(v)) || st.ModTime.IsZero() {
			t.Errorf("stat %q = %+v; want size %d and a mod time", k, st, len(v))
		}
		checkSHA256(t, st, v)
		CheckContent(t, r, k, v)
		if ok, err := bucket.Exists(ctx, r, k, false); !ok || err != nil {
			t.Errorf("Exists(%q) = %v, %v", k, ok, err)
		}
	}
}

func testReadNotFound(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	checkNeverWritten(t, r)
	Put(t, w, "file", []byte("x"), bucket.PutOptions{})
	CheckMissing(t, r, "file/below")
	// A key that was deleted is gone at once: nothing is cached.
	CheckContent(t, r, "file", []byte("x"))
	if err := w.Delete(ctx, "file"); err != nil {
		t.Fatal(err)
	}
	CheckMissing(t, r, "file")
}

func testReadContentTypeEncoding(t *testing.T, w, r bucket.Bucket) {
	checkContentTypes(t, w, r)
}

func testReadKeyValidation(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	for _, key := range BadKeys {
		if _, err := r.Stat(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("stat %q: %v; want ErrInvalidKey", key, err)
		}
		if rc, err := r.Get(ctx, key); !errors.Is(err, bucket.ErrInvalidKey) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("get %q: %v; want ErrInvalidKey", key, err)
		}
	}
}

func testWritesRefused(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	data := []byte("must not be stored")
	refused := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, bucket.ErrReadOnly) {
			t.Errorf("%s: %v; want ErrReadOnly", op, err)
		}
		if bucket.IsTransient(err) {
			t.Errorf("%s: ErrReadOnly is classified transient", op)
		}
	}
	_, err := r.Put(ctx, "new", bytes.NewReader(data), int64(len(data)), bucket.PutOptions{})
	refused("put", err)
	_, err = r.PutResumable(ctx, "new", bytes.NewReader(data), int64(len(data)), bucket.ResumableOptions{})
	refused("put resumable", err)
	CheckMissing(t, w, "new")
	Put(t, w, "kept", data, bucket.PutOptions{})
	refused("delete", r.Delete(ctx, "kept"))
	refused("abort upload", r.AbortUpload(ctx, "kept", "some-upload-id"))
	CheckContent(t, w, "kept", data)
}

func testNoListing(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	Put(t, w, "d/1", []byte("one"), bucket.PutOptions{})
	for _, recursive := range []bool{false, true} {
		l, err := r.List(ctx, "d/", bucket.ListOptions{Recursive: recursive})
		if !errors.Is(err, bucket.ErrNoListing) || l != nil {
			t.Errorf("list recursive=%v = %v, %v; want ErrNoListing", recursive, keys(l), err)
		}
		if err != nil && !strings.Contains(err.Error(), "s3://") {
			t.Errorf("list error %q does not say to list through s3://", err)
		}
	}
	if _, err := r.List(ctx, "/abs", bucket.ListOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Errorf("list with prefix /abs: %v; want ErrInvalidKey", err)
	}
}

func testReadLarge(t *testing.T, w, r bucket.Bucket) {
	ctx := context.Background()
	data := Data(3, 2*bucket.MinPartSize+12345)
	if _, err := w.Put(ctx, "big", Stream(data), -1, bucket.PutOptions{SHA256: SHA256(data)}); err != nil {
		t.Fatal(err)
	}
	st, err := r.Stat(ctx, "big")
	if err != nil || st.Size != int64(len(data)) {
		t.Fatalf("stat big = %+v, %v", st, err)
	}
	checkSHA256(t, st, data)
	CheckContent(t, r, "big", data)
	// A reader closed early releases the request.
	rc, err := r.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("close after a partial read: %v", err)
	}
}

func testConcurrentReads(t *testing.T, w, r bucket.Bucket) {
	const n = 32
	for i := range n {
		Put(t, w, fmt.Sprintf("many/%03d", i), Data(uint64(i), 100+i), bucket.PutOptions{})
	}
	var wg sync.WaitGroup
	for i := range 4 * n {
		wg.Go(func() {
			k := fmt.Sprintf("many/%03d", i%n)
			rc, err := r.Get(context.Background(), k)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, Data(uint64(i%n), 100+i%n)) {
				t.Errorf("%s: %d bytes, %v", k, len(got), err)
			}
		})
	}
	wg.Wait()
}
