package s3_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/limit"
	"github.com/releng-project/releng/internal/bucket/retry"
	"github.com/releng-project/releng/internal/testenv"
)

// TestLeftovers: the multipart uploads in progress of exactly the keys
// asked about (of a size that may go in parts) are found and aborted,
// through the decorators; another key's upload (another tool's, or a key
// that only starts like one of ours) is never touched, nor one started
// after the cut-off.
func TestLeftovers(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t)
	inner := factory(m, m.Endpoint, "pre")(t)
	b := retry.New(limit.New(inner, 4), retry.Options{})
	if _, ok := b.(bucket.Cleaner); !ok {
		t.Fatal("the decorators do not implement bucket.Cleaner")
	}
	name := inner.String()[len("s3://") : len(inner.String())-len("/pre")]
	core := minio.Core{Client: m.Client(t)}
	start := func(key string) string {
		id, err := core.NewMultipartUpload(ctx, name, "pre/"+key, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	big1, big2 := start("rel/big.tar"), start("rel/big.tar")
	small := start("rel/small.txt")    // asked about, but too small to go in parts
	longer := start("rel/big.tar.sig") // another key starting like ours
	other := start("other/tool")       // another tool's
	objs := []bucket.ObjectInfo{{Key: "rel/big.tar", Size: 100 << 20}, {Key: "rel/small.txt", Size: 1000}, {Key: "rel/stream", Size: -1}}

	found, err := bucket.Leftovers(ctx, b, objs)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range found {
		if l.Key != "rel/big.tar" || l.Started.IsZero() {
			t.Errorf("leftover %+v", l)
		}
		ids = append(ids, l.UploadID)
	}
	slices.Sort(ids)
	want := []string{big1, big2}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("Leftovers = %v, want the two uploads of rel/big.tar", found)
	}
	// A cut-off before they started spares them.
	if removed, err := bucket.RemoveLeftovers(ctx, b, objs, time.Now().Add(-time.Hour)); err != nil || len(removed) != 0 {
		t.Errorf("RemoveLeftovers with an earlier cut-off = %v, %v", removed, err)
	}
	removed, err := bucket.RemoveLeftovers(ctx, b, objs, time.Time{})
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveLeftovers = %v, %v", removed, err)
	}
	if found, err := bucket.Leftovers(ctx, b, objs); err != nil || len(found) != 0 {
		t.Errorf("Leftovers after removal = %v, %v", found, err)
	}
	for key, id := range map[string]string{"rel/small.txt": small, "rel/big.tar.sig": longer, "other/tool": other} {
		res, err := core.ListMultipartUploads(ctx, name, "pre/"+key, "", "", "", 1000)
		if err != nil || len(res.Uploads) != 1 || res.Uploads[0].UploadID != id {
			t.Errorf("upload of %s: %+v, %v; want it untouched", key, res.Uploads, err)
		}
	}
}
