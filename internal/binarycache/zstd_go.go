//go:build !cgo || gozstd

package binarycache

import "github.com/klauspost/compress/zstd"

// ZstdEncoder names the encoder NARs are compressed with in this build.
const ZstdEncoder = "klauspost/compress (pure Go)"

// frameEncoder compresses whole frames with klauspost/compress (builds
// without cgo, or with -tags gozstd); one per worker.
type frameEncoder struct{ enc *zstd.Encoder }

// newFrameEncoder returns an encoder at the Nix/zstd level (-1: the
// default, SpeedDefault, comparable to zstd -3). Frames carry no checksum:
// the narinfo's FileHash and NarHash already check every byte, and xxhash
// costs ~1.5% of the CPU.
func newFrameEncoder(level int) (frameEncoder, error) {
	lvl := zstd.SpeedDefault
	if level > 0 {
		lvl = zstd.EncoderLevelFromZstd(level)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	return frameEncoder{enc}, err
}

func (e frameEncoder) encode(dst, src []byte) ([]byte, error) { return e.enc.EncodeAll(src, dst), nil }

func (e frameEncoder) close() { e.enc.Close() }
