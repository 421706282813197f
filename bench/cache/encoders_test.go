//go:build cgo

package cachebench

import (
	"bytes"
	"testing"

	ddzstd "github.com/DataDog/zstd"
	"github.com/klauspost/compress/zstd"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/nar"
)

// BenchmarkEncoders compresses the closure's NARs, in memory, in frames of
// binarycache.FrameSize on one goroutine, with each encoder the cache push
// can be built with: klauspost/compress (the default) and libzstd through
// DataDog/zstd (-tags czstd), at the levels a push uses (Nix's default:
// SpeedDefault, zstd 3). ns/op is CPU time on one core; MB/s per NAR byte;
// "bytes" is the compressed size (issue 16: CPU-s per GB and bytes).
//
//	RELENG_BENCH_ROOT=$(bench/cache/closures.sh small) \
//	  go test ./bench/cache -run '^$' -bench Encoders -benchtime 5x
func BenchmarkEncoders(b *testing.B) {
	infos := closure(b)
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
	dst := make([]byte, 0, binarycache.FrameSize+binarycache.FrameSize/256+64<<10)
	frames := func(b *testing.B, encode func(src []byte) int) {
		b.SetBytes(total)
		var n int
		for b.Loop() {
			n = 0
			for _, data := range nars {
				for i := 0; i < len(data); i += binarycache.FrameSize {
					n += encode(data[i:min(i+binarycache.FrameSize, len(data))])
				}
			}
		}
		b.ReportMetric(float64(n), "bytes")
	}
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
