package binarycache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sync/semaphore"
)

// FrameSize is the amount of NAR compressed into each independent zstd
// frame. Frames are compressed in parallel; their bytes depend only on the
// NAR and the level, never on the number of cores.
const FrameSize = 8 << 20

// compressor is the pool of zstd workers shared by every NAR of a push,
// with a budget of frame bytes in flight that bounds its memory.
type compressor struct {
	workers int
	jobs    chan *frame
	budget  *semaphore.Weighted
	free    chan []byte // recycled FrameSize input buffers
	outFree chan []byte // recycled output buffers
	wg      sync.WaitGroup
}

// frame is one independent zstd frame: input, output, and when it is done.
type frame struct {
	in     []byte
	out    []byte
	err    error // of the encoder
	weight int64
	done   chan struct{}
}

// newCompressor starts workers (GOMAXPROCS when 0) zstd encoders at the
// given Nix/zstd level (-1: the default, comparable to zstd -3). At most
// workers+1 frames of input are in flight at once (one being filled while
// every worker compresses one), which bounds the memory of all NARs.
func newCompressor(level, workers int) (*compressor, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	inFlight := workers + 1
	c := &compressor{
		workers: workers,
		jobs:    make(chan *frame, inFlight),
		budget:  semaphore.NewWeighted(int64(inFlight) * FrameSize),
		free:    make(chan []byte, inFlight),
		outFree: make(chan []byte, inFlight),
	}
	for range workers {
		enc, err := newFrameEncoder(level)
		if err != nil {
			c.close()
			return nil, err
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer enc.close()
			for f := range c.jobs {
				f.out, f.err = enc.encode(c.outBuf(), f.in)
				close(f.done)
			}
		}()
	}
	return c, nil
}

// close stops the workers once the frames submitted are done.
func (c *compressor) close() {
	close(c.jobs)
	c.wg.Wait()
}

func (c *compressor) inBuf(n int) []byte {
	if n == FrameSize {
		select {
		case b := <-c.free:
			return b[:0]
		default:
		}
	}
	return make([]byte, 0, n)
}

// outCap is the capacity of every output buffer: at least the most a
// frame of FrameSize bytes can take (klauspost stores an incompressible
// 128 KiB block raw, with a 3-byte header; libzstd asks for
// ZSTD_compressBound, n + n/256), so that no encoder grows one.
const outCap = FrameSize + FrameSize/256 + 64<<10

// outBuf returns an output buffer for a frame.
func (c *compressor) outBuf() []byte {
	select {
	case b := <-c.outFree:
		return b[:0]
	default:
		return make([]byte, 0, outCap)
	}
}

// release gives a written frame's memory and budget back.
func (c *compressor) release(f *frame) {
	if cap(f.in) == FrameSize {
		select {
		case c.free <- f.in:
		default:
		}
	}
	if cap(f.out) == outCap {
		select {
		case c.outFree <- f.out:
		default:
		}
	}
	f.in, f.out = nil, nil
	c.budget.Release(f.weight)
}

// frameWriter compresses one NAR into independent zstd frames, in order,
// written to out by a goroutine of its own.
type frameWriter struct {
	c      *compressor
	ctx    context.Context
	out    io.Writer
	remain int64 // bytes still expected (the NAR size from the database)
	cur    *frame
	order  chan *frame
	result chan error

	mu     sync.Mutex
	err    error // first error of the writer goroutine
	closed bool
}

func (c *compressor) newWriter(ctx context.Context, out io.Writer, expected int64) *frameWriter {
	fw := &frameWriter{c: c, ctx: ctx, out: out, remain: expected, order: make(chan *frame, 2), result: make(chan error, 1)}
	go fw.run()
	return fw
}

func (fw *frameWriter) run() {
	var err error
	for f := range fw.order {
		select {
		case <-f.done:
		case <-fw.ctx.Done():
			<-f.done // workers never block: wait for the frame to be released
			if err == nil {
				err = fw.ctx.Err()
			}
		}
		if err == nil {
			err = fw.failed() // aborted
		}
		if err == nil {
			err = f.err
		}
		if err == nil {
			_, err = fw.out.Write(f.out)
			if err != nil {
				fw.mu.Lock()
				fw.err = err
				fw.mu.Unlock()
			}
		}
		fw.c.release(f)
	}
	fw.result <- err
}

func (fw *frameWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

// Buffer implements nar.Sink: the free part of the frame being filled.
func (fw *frameWriter) Buffer() ([]byte, error) {
	if err := fw.failed(); err != nil {
		return nil, err
	}
	if fw.cur == nil {
		size := int64(FrameSize)
		if fw.remain > 0 && fw.remain < size {
			size = fw.remain
		}
		size = max(size, 4096)
		if err := fw.c.budget.Acquire(fw.ctx, size); err != nil {
			return nil, err
		}
		fw.cur = &frame{in: fw.c.inBuf(int(size)), weight: size, done: make(chan struct{})}
	}
	return fw.cur.in[len(fw.cur.in):cap(fw.cur.in)], nil
}

// Commit implements nar.Sink: n more bytes of the frame are filled, and a
// full frame goes to the workers.
func (fw *frameWriter) Commit(n int) error {
	fw.cur.in = fw.cur.in[:len(fw.cur.in)+n]
	fw.remain -= int64(n)
	if len(fw.cur.in) == cap(fw.cur.in) {
		return fw.submit()
	}
	return nil
}

// Flush implements nar.Sink; Close compresses the last frame.
func (fw *frameWriter) Flush() error { return nil }

func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		b, err := fw.Buffer()
		if err != nil {
			return n, err
		}
		k := copy(b, p)
		p = p[k:]
		n += k
		if err := fw.Commit(k); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (fw *frameWriter) submit() error {
	f := fw.cur
	fw.cur = nil
	select {
	case fw.c.jobs <- f:
	case <-fw.ctx.Done():
		fw.c.release(f)
		return fw.ctx.Err()
	}
	select {
	case fw.order <- f:
	case <-fw.ctx.Done():
		// The frame is with a worker; the writer goroutine will not see it.
		go func() { <-f.done; fw.c.release(f) }()
		return fw.ctx.Err()
	}
	return nil
}

// Close compresses what is left and waits until every frame is written.
func (fw *frameWriter) Close() error {
	if fw.closed {
		return errors.New("frame writer closed twice")
	}
	fw.closed = true
	var err error
	if fw.cur != nil && len(fw.cur.in) > 0 {
		err = fw.submit()
	} else if fw.cur != nil {
		fw.c.release(fw.cur)
		fw.cur = nil
	}
	close(fw.order)
	if werr := <-fw.result; err == nil {
		err = werr
	}
	return err
}

// Abort stops the writer without writing what is pending.
func (fw *frameWriter) Abort() {
	if fw.closed {
		return
	}
	fw.closed = true
	fw.mu.Lock()
	if fw.err == nil {
		fw.err = errors.New("aborted")
	}
	fw.mu.Unlock()
	if fw.cur != nil {
		fw.c.release(fw.cur)
		fw.cur = nil
	}
	close(fw.order)
	<-fw.result
}

// compressWriter is a NAR compression stream.
type compressWriter interface {
	io.Writer
	Close() error // flushes
	Abort()       // stops without flushing
}

type nopCompressWriter struct{ io.Writer }

func (nopCompressWriter) Close() error { return nil }
func (nopCompressWriter) Abort()       {}

type xzCompressWriter struct{ *xz.Writer }

func (xzCompressWriter) Abort() {}

// xzDictCap is the dictionary size of the xz presets 0–9.
var xzDictCap = []int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}

func newXZWriter(w io.Writer, level int) (*xz.Writer, error) {
	cfg := xz.WriterConfig{DictCap: 8 << 20} // preset 6, Nix's default
	if level >= 0 {
		cfg.DictCap = xzDictCap[min(level, 9)]
	}
	return cfg.NewWriter(w)
}

// newNARWriter returns the compression stream of a NAR of expected bytes
// for method, writing to out.
func (p *pusher) newNARWriter(ctx context.Context, out io.Writer, expected int64) (compressWriter, error) {
	switch p.uri.Compression {
	case CompressionZstd:
		return p.zstd.newWriter(ctx, out, expected), nil
	case CompressionXZ:
		w, err := newXZWriter(out, p.uri.CompressionLevel)
		if err != nil {
			return nil, err
		}
		return xzCompressWriter{w}, nil
	}
	return nopCompressWriter{out}, nil
}

// compressBody compresses a small body (narinfo, listing) with method ("":
// none).
func compressBody(method string, data []byte) ([]byte, error) {
	switch method {
	case "":
		return data, nil
	case CompressionZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil), nil
	case CompressionXZ:
		var b bytes.Buffer
		w, err := newXZWriter(&b, -1)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown compression %q", method)
}
