package dir_test

import (
	"testing"

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
