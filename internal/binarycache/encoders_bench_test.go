//go:build cgo && !gozstd

package binarycache

import (
	"bytes"
	"context"
	"os"
	"testing"

	ddzstd "github.com/DataDog/zstd"
	"github.com/klauspost/compress/zstd"

	"github.com/releng-project/releng/internal/nar"
)

// BenchmarkEncoders compresses the closure of RELENG_BENCH_ROOT's NARs, in
// memory, in frames of FrameSize on one goroutine, with the encoder a push
// uses (newFrameEncoder(-1): libzstd 3 with smaller tables), the one of a
// build without cgo (klauspost SpeedDefault) and libzstd's plain levels 3
// (Nix's) and 2. ns/op is CPU time on one core; MB/s per NAR byte;
// "bytes" is the compressed size (issue 16: CPU-s per GB and bytes).
//
//	RELENG_BENCH_ROOT=$(bench/cache/closures.sh small) \
//	  go test ./internal/binarycache -run '^$' -bench Encoders -benchtime 5x
func BenchmarkEncoders(b *testing.B) {
	root := os.Getenv("RELENG_BENCH_ROOT")
	if root == "" {
		b.Skip("set RELENG_BENCH_ROOT to a store path (bench/cache/closures.sh prints one)")
	}
	infos, err := LoadClosure(context.Background(), Source{}, []string{root})
	if err != nil {
		b.Fatal(err)
	}
	var nars [][]byte
	var total int64
	for _, pi := range infos {
		var buf bytes.Buffer
		if _, err := nar.DumpPath(&buf, pi.Path.String(), nar.DumpOptions{}); err != nil {
			b.Fatal(err)
		}
		nars = append(nars, buf.Bytes())
		total += int64(buf.Len())
	}
	dst := make([]byte, 0, FrameSize+FrameSize/256+64<<10)
	frames := func(b *testing.B, encode func(src []byte) int) {
		b.SetBytes(total)
		var n int
		for b.Loop() {
			n = 0
			for _, data := range nars {
				for i := 0; i < len(data); i += FrameSize {
					n += encode(data[i:min(i+FrameSize, len(data))])
				}
			}
		}
		b.ReportMetric(float64(n), "bytes")
	}
	b.Run("default", func(b *testing.B) {
		enc, err := newFrameEncoder(-1)
		if err != nil {
			b.Fatal(err)
		}
		defer enc.close()
		frames(b, func(src []byte) int {
			out, err := enc.encode(dst[:0], src)
			if err != nil {
				b.Fatal(err)
			}
			return len(out)
		})
	})
	b.Run("klauspost-SpeedDefault", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		frames(b, func(src []byte) int { return len(enc.EncodeAll(src, dst[:0])) })
	})
	for _, level := range []int{2, 3} {
		b.Run("libzstd-"+string(rune('0'+level)), func(b *testing.B) {
			ctx := ddzstd.NewCtx()
			frames(b, func(src []byte) int {
				out, err := ctx.CompressLevel(dst[:cap(dst)], src, level)
				if err != nil {
					b.Fatal(err)
				}
				return len(out)
			})
		})
	}
}
