package layer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Compression is how layer blobs are compressed.
type Compression string

// The compressions a layer can have.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// Fixed settings: changing any of them changes every digest, so they are
// part of FormatVersion.
const (
	// GzipLevel is the deflate level of layer blobs.
	GzipLevel = 6
	// gzipBlock is the input size compressed independently (with the
	// previous 32 KiB as dictionary); the output depends on it and on the
	// level only, never on how many blocks are compressed at once.
	gzipBlock = 1 << 20
	// gzipWindow is deflate's window: the dictionary carried across blocks.
	gzipWindow = 32 << 10
	// inFlight bounds the blocks one writer holds at a time.
	inFlight = 4
)

// MediaType is the OCI media type of a layer with this compression.
func (c Compression) MediaType() string {
	if c == Zstd {
		return "application/vnd.oci.image.layer.v1.tar+zstd"
	}
	return "application/vnd.oci.image.layer.v1.tar+gzip"
}

// Validate reports an unknown compression.
func (c Compression) Validate() error {
	if c != Gzip && c != Zstd {
		return fmt.Errorf("compression %q: must be \"gzip\" or \"zstd\"", string(c))
	}
	return nil
}

// NewCompressor returns a writer compressing into w; Close finishes the
// stream (it does not close w). The output is the same for the same input
// on any machine and any GOMAXPROCS.
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		return NewGzip(w, GzipLevel), nil
	case Zstd:
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1), // single stream, no job splitting
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(false),
			zstd.WithLowerEncoderMem(true))
	}
	return nil, fmt.Errorf("compression %q: must be \"gzip\" or \"zstd\"", string(c))
}

// cpu limits the deflate work of every writer of the process together.
var cpu = make(chan struct{}, runtime.GOMAXPROCS(0))

var flatePools sync.Map // level → *sync.Pool of *flate.Writer

func flateWriter(level int, dst io.Writer, dict []byte) *flate.Writer {
	p, _ := flatePools.LoadOrStore(level, &sync.Pool{})
	if fw, ok := p.(*sync.Pool).Get().(*flate.Writer); ok {
		fw.ResetDict(dst, dict)
		return fw
	}
	fw, err := flate.NewWriterDict(dst, level, dict)
	if err != nil {
		panic(err) // only for an invalid level, a programming error
	}
	return fw
}

func putFlateWriter(level int, fw *flate.Writer) {
	p, _ := flatePools.Load(level)
	p.(*sync.Pool).Put(fw)
}

var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, gzipBlock); return &b }}

// GzipWriter is a gzip writer that compresses blocks of its input in parallel and
// deterministically: block boundaries are fixed, each block is deflated
// with the previous block's last 32 KiB as dictionary and ends with a sync
// flush, so the bytes depend on the input and the level alone. The header
// has no name, no mtime and OS "unknown".
type GzipWriter struct {
	level int
	cur   *[]byte
	dict  []byte
	crc   uint32
	size  uint32

	queue  chan *gzBlock
	done   chan struct{}
	mu     sync.Mutex
	err    error
	out    io.Writer
	closed bool
}

type gzBlock struct {
	in    *[]byte
	dict  []byte
	last  bool
	out   bytes.Buffer
	ready chan struct{}
	err   error
}

// NewGzip starts a gzip stream at the given deflate level into w.
func NewGzip(w io.Writer, level int) *GzipWriter {
	g := &GzipWriter{level: level, out: w, queue: make(chan *gzBlock, inFlight), done: make(chan struct{})}
	g.cur = blockPool.Get().(*[]byte)
	*g.cur = (*g.cur)[:0]
	go g.writeLoop()
	return g
}

func (g *GzipWriter) setErr(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

func (g *GzipWriter) getErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// writeLoop writes the header, then each block as it is ready, in order.
func (g *GzipWriter) writeLoop() {
	defer close(g.done)
	header := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	if _, err := g.out.Write(header); err != nil {
		g.setErr(err)
	}
	for b := range g.queue {
		<-b.ready
		if b.err != nil {
			g.setErr(b.err)
		}
		if g.getErr() == nil {
			if _, err := g.out.Write(b.out.Bytes()); err != nil {
				g.setErr(err)
			}
		}
		blockPool.Put(b.in)
	}
}

// Write compresses p.
func (g *GzipWriter) Write(p []byte) (int, error) {
	if g.closed {
		return 0, fmt.Errorf("gzip: write after close")
	}
	if err := g.getErr(); err != nil {
		return 0, err
	}
	n := len(p)
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p)
	g.size += uint32(len(p))
	for len(p) > 0 {
		room := gzipBlock - len(*g.cur)
		k := min(room, len(p))
		*g.cur = append(*g.cur, p[:k]...)
		p = p[k:]
		if len(*g.cur) == gzipBlock {
			g.dispatch(false)
		}
	}
	return n, nil
}

func (g *GzipWriter) dispatch(last bool) {
	in := g.cur
	b := &gzBlock{in: in, dict: g.dict, last: last, ready: make(chan struct{})}
	if !last {
		data := *in
		g.dict = append([]byte(nil), data[max(0, len(data)-gzipWindow):]...)
		g.cur = blockPool.Get().(*[]byte)
		*g.cur = (*g.cur)[:0]
	}
	g.queue <- b // blocks when inFlight blocks are waiting: backpressure
	go func() {
		cpu <- struct{}{}
		defer func() { <-cpu }()
		fw := flateWriter(g.level, &b.out, b.dict)
		_, err := fw.Write(*b.in)
		if err == nil {
			if b.last {
				err = fw.Close()
			} else {
				err = fw.Flush()
			}
		}
		putFlateWriter(g.level, fw)
		b.err = err
		close(b.ready)
	}()
}

// Close compresses what is left and writes the trailer; it does not close
// the underlying writer.
func (g *GzipWriter) Close() error {
	if g.closed {
		return g.getErr()
	}
	g.closed = true
	g.dispatch(true)
	close(g.queue)
	<-g.done
	if err := g.getErr(); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], g.crc)
	binary.LittleEndian.PutUint32(trailer[4:], g.size)
	_, err := g.out.Write(trailer[:])
	return err
}
