package dir_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/dir"
)

func newBucket(t *testing.T) bucket.Bucket {
	b, err := dir.New(t.TempDir() + "/bucket")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) { buckettest.Run(t, newBucket) }

// TestConformanceNoSync runs the suite on the variant a file:// binary
// cache uses.
func TestConformanceNoSync(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket {
		b := newBucket(t).(*dir.Bucket)
		b.NoSync = true
		return b
	})
}

func newDir(t *testing.T) (*dir.Bucket, string) {
	root := t.TempDir() + "/bucket"
	b, err := dir.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, root
}

func readdir(t *testing.T, p string) []string {
	t.Helper()
	es, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestLayout: a directory bucket is the objects as plain files, plus one
// hidden .releng-meta directory — what a file:// binary cache must look
// like for Nix.
func TestLayout(t *testing.T) {
	b, root := newDir(t)
	objs := map[string]string{"nix-cache-info": "StoreDir: /nix/store\n", "abc.narinfo": "StorePath: /nix/store/abc-x\n", "nar/abc.nar.zst": "zstd bytes"}
	for k, v := range objs {
		buckettest.Put(t, b, k, []byte(v), bucket.PutOptions{ContentType: "text/plain"})
	}
	if got, want := readdir(t, root), []string{".releng-meta", "abc.narinfo", "nar", "nix-cache-info"}; !slices.Equal(got, want) {
		t.Errorf("root holds %q; want %q", got, want)
	}
	if got := readdir(t, filepath.Join(root, "nar")); !slices.Equal(got, []string{"abc.nar.zst"}) {
		t.Errorf("nar/ holds %q", got)
	}
	for k, v := range objs {
		data, err := os.ReadFile(filepath.Join(root, k))
		if err != nil || string(data) != v {
			t.Errorf("%s on disk: %q, %v", k, data, err)
		}
	}
	if got := b.String(); got != "file://"+root {
		t.Errorf("String() = %q", got)
	}
	// Deleting the last object of a directory removes the directory.
	if err := b.Delete(context.Background(), "nar/abc.nar.zst"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "nar")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty nar/ left behind: %v", err)
	}
}

// TestNotCreatedUntilWritten: reading a bucket whose directory does not
// exist finds nothing and creates nothing.
func TestNotCreatedUntilWritten(t *testing.T) {
	b, root := newDir(t)
	ctx := context.Background()
	buckettest.CheckMissing(t, b, "x")
	if l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil || len(l) != 0 {
		t.Errorf("list = %v, %v", l, err)
	}
	if err := b.Delete(ctx, "x"); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading created the directory: %v", err)
	}
	if _, err := dir.New("relative/path"); err == nil {
		t.Error("a relative path was accepted")
	}
}

// TestStaleMetadata: a file changed behind releng's back no longer has a
// known checksum (rather than a wrong one).
func TestStaleMetadata(t *testing.T) {
	b, root := newDir(t)
	ctx := context.Background()
	buckettest.Put(t, b, "f", []byte("original"), bucket.PutOptions{ContentType: "text/plain"})
	time.Sleep(20 * time.Millisecond) // past the filesystem's timestamp granularity
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("replaced"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stat(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if st.SHA256 != "" || st.Size != 8 {
		t.Errorf("after an outside change, stat = %+v; want size 8 and no sha256", st)
	}
	// A file put there by another tool has no checksum either.
	if err := os.WriteFile(filepath.Join(root, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Stat(ctx, "other"); err != nil || st.SHA256 != "" || st.Size != 1 {
		t.Errorf("foreign file: stat = %+v, %v", st, err)
	}
	// Writing it again through the bucket records it again.
	buckettest.Put(t, b, "f", []byte("replaced"), bucket.PutOptions{})
	if st, err := b.Stat(ctx, "f"); err != nil || st.SHA256 != buckettest.SHA256([]byte("replaced")) {
		t.Errorf("after put: stat = %+v, %v", st, err)
	}
}

// TestConfinement: nothing reaches outside the root, not even through a
// symlink inside it; releng's own names are refused as keys.
func TestConfinement(t *testing.T) {
	b, root := newDir(t)
	ctx := context.Background()
	buckettest.Put(t, b, "inside", []byte("x"), bucket.PutOptions{})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if rc, err := b.Get(ctx, "link/secret"); err == nil {
		rc.Close()
		t.Error("read through a symlink out of the root")
	}
	if _, err := b.Put(ctx, "link/planted", strings.NewReader("x"), 1, bucket.PutOptions{}); err == nil {
		t.Error("wrote through a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Error("a file was planted outside the root")
	}
	if err := b.Delete(ctx, "link/secret"); err != nil {
		t.Logf("delete through the symlink: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("deleted outside the root: %v", err)
	}
	for _, key := range []string{".releng-meta/objects/x", "a/.releng-tmp-123", ".releng-x"} {
		if _, err := b.Put(ctx, key, strings.NewReader("x"), 1, bucket.PutOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
			t.Errorf("put %q: %v; want ErrInvalidKey", key, err)
		}
	}
}

// TestFileDirConflict: "a" and "a/b" cannot both be objects on a
// filesystem; the error says so.
func TestFileDirConflict(t *testing.T) {
	b, _ := newDir(t)
	ctx := context.Background()
	buckettest.Put(t, b, "a", []byte("file"), bucket.PutOptions{})
	if _, err := b.Put(ctx, "a/b", strings.NewReader("x"), 1, bucket.PutOptions{}); err == nil || !strings.Contains(err.Error(), "cannot hold both") {
		t.Errorf("put a/b over object a: %v", err)
	}
	buckettest.Put(t, b, "d/x", []byte("x"), bucket.PutOptions{})
	if _, err := b.Put(ctx, "d", strings.NewReader("x"), 1, bucket.PutOptions{}); err == nil || !strings.Contains(err.Error(), "cannot hold both") {
		t.Errorf("put d over directory d/: %v", err)
	}
	buckettest.CheckContent(t, b, "a", []byte("file"))
	buckettest.CheckContent(t, b, "d/x", []byte("x"))
	l, err := b.List(ctx, "", bucket.ListOptions{Recursive: true})
	if err != nil || len(l) != 2 {
		t.Errorf("list = %v, %v; want a and d/x only (no temp files)", l, err)
	}
}

// TestNoRecords: the variant a file:// binary cache uses keeps nothing but
// the objects; Put still reports the checksum of what it stored.
func TestNoRecords(t *testing.T) {
	b, err := dir.NewNixCache(t.TempDir() + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	if !b.NoSync || !b.NoRecords {
		t.Fatalf("NewNixCache: NoSync %v, NoRecords %v", b.NoSync, b.NoRecords)
	}
	ctx := context.Background()
	data := []byte("a narinfo\n")
	info, err := b.Put(ctx, "x/abc.narinfo", bytes.NewReader(data), int64(len(data)), bucket.PutOptions{ContentType: "text/x-nix-narinfo"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) {
		t.Errorf("Put reported %+v", info)
	}
	st, err := b.Stat(ctx, "x/abc.narinfo")
	if err != nil || st.SHA256 != "" || st.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, %v; want the size and no checksum", st, err)
	}
	if st, err := bucket.StatSHA256(ctx, b, "x/abc.narinfo"); err != nil || st.SHA256 != info.SHA256 {
		t.Errorf("StatSHA256 = %+v, %v; want the checksum read back", st, err)
	}
	entries, err := os.ReadDir(b.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "x" {
		t.Errorf("the bucket directory holds %v, want only the object's directory", entries)
	}
	got, err := os.ReadFile(filepath.Join(b.Path(), "x", "abc.narinfo"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("object file: %q, %v", got, err)
	}
}

// TestHashObject: HashObject reads the file as it is now, whatever its
// record says, and fails as Stat does.
func TestHashObject(t *testing.T) {
	b, root := newDir(t)
	ctx := context.Background()
	buckettest.Put(t, b, "a/k", []byte("recorded"), bucket.PutOptions{})
	changed := []byte("changed by another tool, longer")
	if err := os.WriteFile(filepath.Join(root, "a", "k"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := b.HashObject(ctx, "a/k")
	if err != nil || h.SHA256 != buckettest.SHA256(changed) || h.Size != int64(len(changed)) || h.Key != "a/k" || h.ModTime.IsZero() {
		t.Errorf("HashObject = %+v, %v; want the new content's sha256 and size", h, err)
	}
	if st, err := b.Stat(ctx, "a/k"); err != nil || st.SHA256 != "" {
		t.Errorf("Stat = %+v, %v; want the stale record ignored", st, err)
	}
	for _, key := range []string{"missing", "a"} {
		if _, err := b.HashObject(ctx, key); !errors.Is(err, bucket.ErrNotFound) {
			t.Errorf("HashObject(%q) = %v; want ErrNotFound", key, err)
		}
	}
	if _, err := b.HashObject(ctx, "../escape"); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Errorf("HashObject(../escape) = %v; want ErrInvalidKey", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.HashObject(cancelled, "a/k"); !errors.Is(err, context.Canceled) {
		t.Errorf("HashObject with a cancelled context = %v", err)
	}
}
