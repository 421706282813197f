package binarycache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
)

// countingBucket counts the operations that reach a bucket.
type countingBucket struct {
	bucket.Bucket
	mu  sync.Mutex
	ops map[string]int
}

func newCounting(b bucket.Bucket) *countingBucket {
	return &countingBucket{Bucket: b, ops: map[string]int{}}
}

func (c *countingBucket) count(op string) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}

func (c *countingBucket) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	c.count("stat")
	return c.Bucket.Stat(ctx, key)
}

func (c *countingBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.count("get")
	return c.Bucket.Get(ctx, key)
}

func (c *countingBucket) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	c.count("put")
	return c.Bucket.Put(ctx, key, body, size, opts)
}

func (c *countingBucket) Delete(ctx context.Context, key string) error {
	c.count("delete")
	return c.Bucket.Delete(ctx, key)
}

// HashObject forwards the cheap read-back of a directory bucket.
func (c *countingBucket) HashObject(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	c.count("hash")
	return bucket.HashObject(ctx, c.Bucket, key)
}

func (c *countingBucket) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.ops {
		m[k] = v
	}
	return m
}

// decodeBody undoes a Content-Encoding or NAR compression.
func decodeBody(t testing.TB, method string, data []byte) []byte {
	t.Helper()
	switch method {
	case "", "none":
		return data
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		out, err := d.DecodeAll(data, nil)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		return out
	case "xz":
		r, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("xz: %v", err)
		}
		return out
	}
	t.Fatalf("unknown compression %q", method)
	return nil
}

// readNarInfo reads and parses HASH.narinfo.
func readNarInfo(t testing.TB, b bucket.Bucket, key, storeDir string) *nixstore.NarInfo {
	t.Helper()
	info, err := b.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	data := readObject(t, b, key)
	data = decodeBody(t, info.ContentEncoding, data)
	ni, err := nixstore.ParseNarInfo(data, key, storeDir)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return ni
}

func readObject(t testing.TB, b bucket.Bucket, key string) []byte {
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

func exists(t testing.TB, b bucket.Bucket, key string) bool {
	t.Helper()
	ok, err := bucket.Exists(context.Background(), b, key, false)
	if err != nil {
		t.Fatalf("exists %s: %v", key, err)
	}
	return ok
}

// narInfoKeys lists the narinfos of a cache.
func narInfoKeys(t testing.TB, b bucket.Bucket) []string {
	t.Helper()
	objs, err := b.List(context.Background(), "", bucket.ListOptions{})
	if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		if !o.IsPrefix && strings.HasSuffix(o.Key, ".narinfo") {
			keys = append(keys, o.Key)
		}
	}
	return keys
}

// checkConsistent checks the invariant of SPEC §9.1 step 4 on whatever is
// in the cache: every narinfo names a NAR that is there (with its
// FileSize), and references whose narinfos are there. With deep, it also
// reads every NAR back and checks FileHash, NarHash, NarSize, the listing
// and the signatures by keys. It returns the number of narinfos.
func checkConsistent(t testing.TB, b bucket.Bucket, storeDir string, deep bool, listing bool, keys []nixstore.PublicKey) int {
	t.Helper()
	ctx := context.Background()
	keysFound := narInfoKeys(t, b)
	for _, key := range keysFound {
		ni := readNarInfo(t, b, key, storeDir)
		info, err := b.Stat(ctx, ni.URL)
		if err != nil {
			t.Errorf("%s names %s, which is not there: %v", key, ni.URL, err)
			continue
		}
		if info.Size != int64(ni.FileSize) {
			t.Errorf("%s: FileSize %d, but %s has %d bytes", key, ni.FileSize, ni.URL, info.Size)
		}
		for _, r := range ni.References {
			if !exists(t, b, r.Hash+".narinfo") {
				t.Errorf("%s refers to %s, whose narinfo is not there", key, r)
			}
		}
		if listing && !exists(t, b, ni.StorePath.Hash+".ls") {
			t.Errorf("%s: no listing %s.ls", key, ni.StorePath.Hash)
		}
		if !deep {
			continue
		}
		file := readObject(t, b, ni.URL)
		if sha256.Sum256(file) != [32]byte(ni.FileHash) {
			t.Errorf("%s: FileHash differs from the SHA-256 of %s", key, ni.URL)
		}
		narData := decodeBody(t, ni.Compression, file)
		if uint64(len(narData)) != ni.NarSize || sha256.Sum256(narData) != [32]byte(ni.NarHash) {
			t.Errorf("%s: NarHash/NarSize differ from the NAR in %s", key, ni.URL)
		}
		if listing {
			l, err := nar.ReadListing(bytes.NewReader(narData))
			if err != nil {
				t.Fatalf("%s: %v", ni.URL, err)
			}
			want, _ := l.Marshal()
			info, _ := b.Stat(ctx, ni.StorePath.Hash+".ls")
			got := decodeBody(t, info.ContentEncoding, readObject(t, b, ni.StorePath.Hash+".ls"))
			if !bytes.Equal(got, want) {
				t.Errorf("%s.ls differs from the listing of the NAR", ni.StorePath.Hash)
			}
		}
		if len(keys) > 0 {
			if signed := nixstore.VerifySignatures(ni.Fingerprint(), ni.Sigs, keys); len(signed) != len(keys) {
				t.Errorf("%s: signed by %v, want all of %d keys", key, signed, len(keys))
			}
		}
	}
	return len(keysFound)
}
