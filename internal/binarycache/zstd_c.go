//go:build cgo && !gozstd

package binarycache

/*
#include <stddef.h>

// libzstd's public API (zstd.h, stable since libzstd 1.4.0). The library
// is the libzstd 1.5.7 source that github.com/DataDog/zstd bundles and
// compiles into the binary; that module's Go API sets levels only, and
// the frame encoder below needs two more parameters.
typedef struct ZSTD_CCtx_s ZSTD_CCtx;
ZSTD_CCtx* ZSTD_createCCtx(void);
size_t ZSTD_freeCCtx(ZSTD_CCtx* cctx);
size_t ZSTD_CCtx_setParameter(ZSTD_CCtx* cctx, int param, int value);
size_t ZSTD_compress2(ZSTD_CCtx* cctx, void* dst, size_t dstCapacity, const void* src, size_t srcSize);
unsigned ZSTD_isError(size_t code);
const char* ZSTD_getErrorName(size_t code);
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	_ "github.com/DataDog/zstd" // the libzstd the declarations above link to
)

// ZstdEncoder names the encoder NARs are compressed with in this build.
const ZstdEncoder = "libzstd 1.5.7"

// ZSTD_cParameter values (zstd.h).
const (
	zstdCompressionLevel = 100
	zstdHashLog          = 102
	zstdChainLog         = 103
)

// frameEncoder compresses whole frames with libzstd; one per worker.
type frameEncoder struct{ ctx *C.ZSTD_CCtx }

// newFrameEncoder returns an encoder at the Nix/zstd level. The default
// (-1) is level 3, Nix's, with the double-fast search's tables at 2^15
// entries instead of 2^17 and 2^16: on the benchmark closures the same
// bytes as Nix's (1.001×) for about a third less CPU than klauspost's
// SpeedDefault (bench/cache/RESULTS.md). An explicit level is libzstd's
// level as it stands.
func newFrameEncoder(level int) (frameEncoder, error) {
	ctx := C.ZSTD_createCCtx()
	if ctx == nil {
		return frameEncoder{}, errors.New("libzstd: out of memory for a compression context")
	}
	e := frameEncoder{ctx}
	params := [][2]int{{zstdCompressionLevel, level}}
	if level <= 0 {
		params = [][2]int{{zstdCompressionLevel, 3}, {zstdHashLog, 15}, {zstdChainLog, 15}}
	}
	for _, p := range params {
		if r := C.ZSTD_CCtx_setParameter(ctx, C.int(p[0]), C.int(p[1])); C.ZSTD_isError(r) != 0 {
			e.close()
			return frameEncoder{}, fmt.Errorf("libzstd: parameter %d = %d: %s", p[0], p[1], C.GoString(C.ZSTD_getErrorName(r)))
		}
	}
	return e, nil
}

// encode appends the frame of src to dst, whose capacity (outCap) holds
// any frame of FrameSize bytes.
func (e frameEncoder) encode(dst, src []byte) ([]byte, error) {
	out := dst[len(dst):cap(dst)]
	var srcPtr, outPtr unsafe.Pointer
	if len(src) > 0 {
		srcPtr = unsafe.Pointer(&src[0])
	}
	if len(out) > 0 {
		outPtr = unsafe.Pointer(&out[0])
	}
	n := C.ZSTD_compress2(e.ctx, outPtr, C.size_t(len(out)), srcPtr, C.size_t(len(src)))
	if C.ZSTD_isError(n) != 0 {
		return nil, fmt.Errorf("libzstd: %s", C.GoString(C.ZSTD_getErrorName(n)))
	}
	return dst[:len(dst)+int(n)], nil
}

func (e frameEncoder) close() { C.ZSTD_freeCCtx(e.ctx) }
