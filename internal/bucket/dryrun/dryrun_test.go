package dryrun_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/dryrun"
)

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/b"
	inner, err := dir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	buckettest.Put(t, inner, "keep", []byte("kept"), bucket.PutOptions{})
	buckettest.Put(t, inner, "old/gone", []byte("to delete"), bucket.PutOptions{})
	before := tree(t, path)

	var seen []string
	d := dryrun.New(inner, func(op dryrun.Op) { seen = append(seen, op.String()) })
	data := []byte("new object")
	info, err := d.Put(ctx, "new/obj", bytes.NewReader(data), int64(len(data)), bucket.PutOptions{ContentType: "text/plain"})
	if err != nil || info.SHA256 != buckettest.SHA256(data) || info.Size != int64(len(data)) {
		t.Fatalf("put = %+v, %v", info, err)
	}
	// A stream from a pipe is drained, so its producer finishes.
	pr, pw := io.Pipe()
	go func() { pw.Write(bytes.Repeat([]byte("z"), 1<<20)); pw.Close() }()
	if info, err := d.Put(ctx, "nar/x.nar.zst", pr, -1, bucket.PutOptions{}); err != nil || info.Size != 1<<20 {
		t.Fatalf("stream put = %+v, %v", info, err)
	}
	if err := d.Delete(ctx, "old/gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutResumable(ctx, "big", bytes.NewReader(data), int64(len(data)), bucket.ResumableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.AbortUpload(ctx, "big", "someid"); err != nil {
		t.Fatal(err)
	}
	// Checks still apply.
	if _, err := d.Put(ctx, "bad", strings.NewReader("abc"), 5, bucket.PutOptions{}); !errors.Is(err, bucket.ErrSizeMismatch) {
		t.Errorf("size mismatch: %v", err)
	}
	if _, err := d.Put(ctx, "../x", strings.NewReader("abc"), 3, bucket.PutOptions{}); !errors.Is(err, bucket.ErrInvalidKey) {
		t.Errorf("bad key: %v", err)
	}

	if after := tree(t, path); !slices.Equal(before, after) {
		t.Errorf("the dry run wrote: before %q, after %q", before, after)
	}
	ops := d.Ops()
	var kinds []string
	for _, o := range ops {
		kinds = append(kinds, o.Kind+" "+o.Key)
	}
	want := []string{"put new/obj", "put nar/x.nar.zst", "delete old/gone", "put big", "abort upload big"}
	if !slices.Equal(kinds, want) || len(seen) != len(want) {
		t.Errorf("ops %q (callback saw %d); want %q", kinds, len(seen), want)
	}
	if ops[0].SHA256 != buckettest.SHA256(data) || ops[0].ContentType != "text/plain" || !strings.HasPrefix(ops[0].URL, "file://") {
		t.Errorf("op 0 = %+v", ops[0])
	}

	// Reads see the real bucket with the dry run's writes applied.
	if st, err := d.Stat(ctx, "new/obj"); err != nil || st.Size != int64(len(data)) {
		t.Errorf("stat of a dry-run put: %+v, %v", st, err)
	}
	if _, err := d.Get(ctx, "new/obj"); !errors.Is(err, dryrun.ErrNoContent) {
		t.Errorf("get of a dry-run put: %v; want ErrNoContent", err)
	}
	buckettest.CheckMissing(t, d, "old/gone")
	buckettest.CheckContent(t, d, "keep", []byte("kept"))
	l, err := d.List(ctx, "", bucket.ListOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range l {
		keys = append(keys, o.Key)
	}
	if want := []string{"big", "keep", "nar/x.nar.zst", "new/obj"}; !slices.Equal(keys, want) {
		t.Errorf("recursive list = %q; want %q", keys, want)
	}
	l, err = d.List(ctx, "", bucket.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys = nil
	for _, o := range l {
		keys = append(keys, o.Key)
	}
	if want := []string{"big", "keep", "nar/", "new/", "old/"}; !slices.Equal(keys, want) {
		t.Errorf("list = %q; want %q", keys, want)
	}
}

// tree lists every file and directory under dir, with file sizes.
func tree(t *testing.T, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", p, d.IsDir(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
