//go:build czstd && cgo

package binarycache

import ddzstd "github.com/DataDog/zstd"

// frameEncoder compresses whole frames with the C libzstd DataDog/zstd
// bundles (built with -tags czstd; measured against klauspost in
// docs/DECISIONS.md).
type frameEncoder struct {
	ctx   ddzstd.Ctx
	level int
}

// newFrameEncoder returns an encoder at the Nix/zstd level (-1: libzstd's
// default, 3, as Nix; DataDog's DefaultCompression is 5).
func newFrameEncoder(level int) (frameEncoder, error) {
	if level <= 0 {
		level = 3
	}
	return frameEncoder{ctx: ddzstd.NewCtx(), level: level}, nil
}

func (e frameEncoder) encode(dst, src []byte) ([]byte, error) {
	return e.ctx.CompressLevel(dst[:cap(dst)], src, e.level)
}

func (e frameEncoder) close() {}
