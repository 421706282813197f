package binarycache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/testenv"
)

// TestPushRemovesLeftovers: a push that completes removes what killed
// pushes left for its plan — the multipart upload of a NAR large enough to
// go in parts (S3), the temporary files in nar/ and beside the narinfos (a
// file:// cache) — and nothing else: another tool's upload of another NAR
// key, a small NAR's key (never sent in parts), temporary files elsewhere.
func TestPushRemovesLeftovers(t *testing.T) {
	ctx := context.Background()
	store := makeTestStore(t, 21, []pathSpec{
		{name: "small", files: map[string]int{"a": 1000}},
		{name: "big", random: map[string]int{"blob": 4_500_000}, refs: []int{0}},
	})
	var bigKey, smallKey string
	uriOf := func(raw string) *StoreURI { return mustURI(t, raw) }
	for _, pi := range store.Infos {
		k := uriOf("file:///x").NARKey(pi.NarHash)
		if pi.Path.Name == "big" {
			bigKey = k
		} else {
			smallKey = k
		}
	}

	t.Run("file", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "cache")
		uri := uriOf("file://" + root)
		b, err := uri.Open(OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dead := []string{"nar/.releng-tmp-0123456789abcdef01234567", ".releng-tmp-76543210fedcba9876543210", "other/.releng-tmp-aaaaaaaaaaaaaaaaaaaaaaaa"}
		for _, d := range dead {
			os.MkdirAll(filepath.Dir(filepath.Join(root, d)), 0o755)
			os.WriteFile(filepath.Join(root, d), []byte("half"), 0o644)
		}
		sum, err := Push(ctx, PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.LeftoversRemoved) != 2 || sum.LeftoversError != "" {
			t.Errorf("summary: removed %q, error %q", sum.LeftoversRemoved, sum.LeftoversError)
		}
		var left []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".releng-tmp-") {
				rel, _ := filepath.Rel(root, p)
				left = append(left, filepath.ToSlash(rel))
			}
			return nil
		})
		if !slices.Equal(left, dead[2:]) {
			t.Errorf("temporary files after the push: %q, want %q", left, dead[2:])
		}
		checkConsistent(t, b, store.Dir, false, false, nil)
	})

	t.Run("s3", func(t *testing.T) {
		m := testenv.StartMinIO(t)
		m.MakeBucket(t, "cache", false)
		for _, kv := range m.AWSEnv() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		t.Setenv("HOME", t.TempDir())
		uri := uriOf("s3://cache?endpoint=" + m.Endpoint + "&scheme=http&region=us-east-1")
		b, err := uri.Open(OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		core := minio.Core{Client: m.Client(t)}
		start := func(key string) string {
			id, err := core.NewMultipartUpload(ctx, "cache", key, minio.PutObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		start(bigKey)
		kept := map[string]string{smallKey: start(smallKey), "nar/0000000000000000000000000000000000000000000000000000.nar.xz": start("nar/0000000000000000000000000000000000000000000000000000.nar.xz")}
		sum, err := Push(ctx, PushOptions{URI: uri, Bucket: b, Paths: store.Infos})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.LeftoversRemoved) != 1 || !strings.Contains(sum.LeftoversRemoved[0], bigKey) || sum.LeftoversError != "" {
			t.Errorf("summary: removed %q, error %q", sum.LeftoversRemoved, sum.LeftoversError)
		}
		uploads := func(key string) []string {
			res, err := core.ListMultipartUploads(ctx, "cache", key, "", "", "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, u := range res.Uploads {
				ids = append(ids, u.UploadID)
			}
			return ids
		}
		if ids := uploads(bigKey); len(ids) != 0 {
			t.Errorf("uploads of %s left: %v", bigKey, ids)
		}
		for k, id := range kept {
			if ids := uploads(k); !slices.Equal(ids, []string{id}) {
				t.Errorf("uploads of %s: %v, want %s untouched", k, ids, id)
			}
		}
	})
}

// leftoversOf lists what unfinished writes b holds for the objects a push
// of store writes (every NAR key taken as possibly sent in parts) and, in
// a directory bucket, every temporary file wherever it is.
func leftoversOf(t *testing.T, b bucket.Bucket, uri *StoreURI, store *testStore) []string {
	t.Helper()
	var objs []bucket.ObjectInfo
	for _, pi := range store.Infos {
		objs = append(objs,
			bucket.ObjectInfo{Key: uri.NARKey(pi.NarHash), Size: -1},
			bucket.ObjectInfo{Key: NarInfoKey(pi.Path)},
			bucket.ObjectInfo{Key: ListingKey(pi.Path)})
	}
	found, err := bucket.Leftovers(context.Background(), b, objs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range found {
		out = append(out, l.String())
	}
	if d, ok := b.(*dir.Bucket); ok {
		filepath.WalkDir(d.Path(), func(p string, e os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(e.Name(), ".releng-tmp-") && !slices.ContainsFunc(found, func(l bucket.Leftover) bool { return filepath.Join(d.Path(), l.Key) == p }) {
				out = append(out, "temporary file "+p)
			}
			return nil
		})
	}
	return out
}
