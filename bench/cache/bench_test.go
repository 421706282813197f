// Package cachebench holds the Go benchmarks of `releng cache push`, for
// profiling (go test -cpuprofile / -memprofile). They run only when
// RELENG_BENCH_ROOT names a store path whose closure to push (run.sh sets
// it up), so `go test ./...` skips them.
//
//	RELENG_BENCH_ROOT=$(bench/cache/closures.sh small) \
//	  go test ./bench/cache -run '^$' -bench . -benchtime 3x -cpuprofile /tmp/cpu.out
package cachebench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/nixstore"
)

func closure(b *testing.B) []nixstore.PathInfo {
	b.Helper()
	root := os.Getenv("RELENG_BENCH_ROOT")
	if root == "" {
		b.Skip("set RELENG_BENCH_ROOT to a store path (bench/cache/run.sh does)")
	}
	infos, err := binarycache.LoadClosure(context.Background(), binarycache.Source{}, []string{root})
	if err != nil {
		b.Fatal(err)
	}
	return infos
}

// BenchmarkPushFile is a cold push of the closure to a new file:// cache.
func BenchmarkPushFile(b *testing.B) {
	infos := closure(b)
	var narBytes int64
	for _, pi := range infos {
		narBytes += int64(pi.NarSize)
	}
	b.SetBytes(narBytes)
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(b.TempDir(), "cache")
		uri, err := binarycache.ParseStoreURI("file://" + dir + "?compression=zstd")
		if err != nil {
			b.Fatal(err)
		}
		bk, err := uri.Open(binarycache.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sum, err := binarycache.Push(context.Background(), binarycache.PushOptions{URI: uri, Bucket: bk, Paths: infos})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(sum.FileBytes)/float64(narBytes), "ratio")
		os.RemoveAll(dir)
	}
}
