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
	// GzipLevel is the deflate level of layer blobs. Level 7 is the
	// fastest level of klauspost/compress whose layers are within 2% of
	// `gzip -6` (1.016× on the benchmark closure; level 6 1.031×, level 2
	// 1.13×): every pull of every user pays the bytes (docs/DECISIONS.md).
	GzipLevel = 7
	// gzipBlock is the input size compressed independently (with the
	// previous 32 KiB as dictionary); the output depends on it and on the
	// level only, never on how many blocks are compressed at once.
	gzipBlock = 1 << 20
	// gzipWindow is deflate's window: the dictionary carried across blocks.
	gzipWindow = 32 << 10
	// zstdFrame is the input size of each independent zstd frame of a
	// layer (klauspost SpeedDefault, content checksum on): frames are
	// compressed in parallel and concatenated, which every zstd reader
	// reads as one stream (RFC 8878 §3.1). 4 MiB frames cost 1.3% of the
	// bytes of one frame for the whole layer (docs/DECISIONS.md).
	zstdFrame = 4 << 20
)

// heldBytes bounds the input one writer holds in blocks at a time (its
// memory, not its bytes): 6 gzip blocks, 3 zstd frames (at least 3, so
// that two cores compress while one block fills).
const heldBytes = 6 << 20

func (c blockCodec) inFlight() int { return max(3, heldBytes/c.size) }

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
		return newZstd(w), nil
	}
	return nil, fmt.Errorf("compression %q: must be \"gzip\" or \"zstd\"", string(c))
}

// cpu limits the compression work of every writer of the process together.
var cpu = make(chan struct{}, runtime.GOMAXPROCS(0))

// pool keeps encoders (large tables) and blocks for reuse. A channel, not a
// sync.Pool: a garbage collection must not empty it, or every collection
// would allocate new encoders and cause the next one.
type pool[T any] struct {
	size int // how many it keeps (default 2 per core)
	once sync.Once
	ch   chan T
}

func (p *pool[T]) get(create func() T) T {
	p.once.Do(p.init)
	select {
	case e := <-p.ch:
		return e
	default:
		return create()
	}
}

func (p *pool[T]) init() {
	if p.size == 0 {
		p.size = 2 * cap(cpu)
	}
	p.ch = make(chan T, p.size)
}

func (p *pool[T]) put(e T) {
	p.once.Do(p.init)
	select {
	case p.ch <- e:
	default:
	}
}

// flateWriters keeps deflate encoders per level.
var flateWriters sync.Map // level → *pool[*flate.Writer]

func flateWriter(level int, dst io.Writer, dict []byte) *flate.Writer {
	p, _ := flateWriters.LoadOrStore(level, new(pool[*flate.Writer]))
	fw := p.(*pool[*flate.Writer]).get(func() *flate.Writer {
		fw, err := flate.NewWriterDict(dst, level, dict)
		if err != nil {
			panic(err) // only for an invalid level, a programming error
		}
		return fw
	})
	fw.ResetDict(dst, dict)
	return fw
}

func putFlateWriter(level int, fw *flate.Writer) {
	p, _ := flateWriters.Load(level)
	p.(*pool[*flate.Writer]).put(fw)
}

var zstdEncoders pool[*zstd.Encoder]

func zstdEncoder() *zstd.Encoder {
	return zstdEncoders.get(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true)) // an empty layer is one empty frame
		if err != nil {
			panic(err) // fixed, valid options
		}
		return enc
	})
}

// blockCodec is how a blockWriter compresses: the input size of a block,
// how much of the previous block's input is passed as dictionary, the
// bytes before the first block and after the last, and the compression
// of one block.
type blockCodec struct {
	size, window int
	header       []byte
	// sum sees every byte written, in order (gzip's CRC-32 and size).
	sum func(p []byte)
	// encode appends the compressed block to dst.
	encode func(dst *bytes.Buffer, in, dict []byte, last bool) error
	// trailer is written after the last block.
	trailer func() []byte
}

// blockWriter compresses blocks of its input in parallel and
// deterministically: block boundaries are fixed by the codec, each block
// is compressed alone (with the previous block's last bytes as dictionary
// where the codec carries one), so the bytes depend on the input and the
// codec alone. At most the codec's inFlight blocks, recycled, are held at a
// time.
type blockWriter struct {
	codec blockCodec
	cur   *block
	dict  []byte

	blocks int         // blocks allocated so far
	free   chan *block // blocks written out, for reuse
	queue  chan *block
	done   chan struct{}
	mu     sync.Mutex
	err    error
	out    io.Writer
	closed bool
}

type block struct {
	in    []byte
	dict  []byte
	last  bool
	out   bytes.Buffer
	ready chan struct{}
	err   error
}

func newBlockWriter(w io.Writer, c blockCodec) *blockWriter {
	n := c.inFlight()
	g := &blockWriter{codec: c, out: w, free: make(chan *block, n), queue: make(chan *block, n), done: make(chan struct{})}
	g.cur = g.block()
	go g.writeLoop()
	return g
}

// GzipWriter is a gzip stream whose deflate blocks are compressed in
// parallel: each 1 MiB of input is deflated with the previous 32 KiB as
// dictionary and ends with a sync flush. The header has no name, no mtime
// and OS "unknown".
type GzipWriter = blockWriter

// NewGzip starts a gzip stream at the given deflate level into w.
func NewGzip(w io.Writer, level int) *GzipWriter {
	var crc, size uint32
	return newBlockWriter(w, blockCodec{
		size:   gzipBlock,
		window: gzipWindow,
		header: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255},
		sum: func(p []byte) {
			crc = crc32.Update(crc, crc32.IEEETable, p)
			size += uint32(len(p))
		},
		encode: func(dst *bytes.Buffer, in, dict []byte, last bool) error {
			fw := flateWriter(level, dst, dict)
			defer putFlateWriter(level, fw)
			if _, err := fw.Write(in); err != nil {
				return err
			}
			if last {
				return fw.Close()
			}
			return fw.Flush()
		},
		trailer: func() []byte {
			var t [8]byte
			binary.LittleEndian.PutUint32(t[:4], crc)
			binary.LittleEndian.PutUint32(t[4:], size)
			return t[:]
		},
	})
}

// newZstd starts a zstd stream of independent frames of zstdFrame bytes
// of input each.
func newZstd(w io.Writer) *blockWriter {
	var total int64
	return newBlockWriter(w, blockCodec{
		size: zstdFrame,
		sum:  func(p []byte) { total += int64(len(p)) },
		encode: func(dst *bytes.Buffer, in, _ []byte, last bool) error {
			// total is read for the last block only, after every Write.
			if len(in) == 0 && last && total > 0 {
				return nil // the input ended with a full frame
			}
			enc := zstdEncoder()
			defer zstdEncoders.put(enc)
			dst.Write(enc.EncodeAll(in, dst.AvailableBuffer()))
			return nil
		},
	})
}

// blocks keeps the blocks of finished writers for the next ones, per
// block size: an image has a writer per layer, and allocating (zeroing,
// faulting in) every layer's blocks anew cost 8% of a build's CPU.
var blocks sync.Map // size → *pool[*block]

func blockPool(c blockCodec) *pool[*block] {
	if p, ok := blocks.Load(c.size); ok {
		return p.(*pool[*block])
	}
	// Enough for a writer per core (image build's default jobs).
	p, _ := blocks.LoadOrStore(c.size, &pool[*block]{size: cap(cpu) * c.inFlight()})
	return p.(*pool[*block])
}

// block returns an empty block, waiting for one to be written out when
// the codec's inFlight are in use.
func (g *blockWriter) block() *block {
	var b *block
	if g.blocks < g.codec.inFlight() {
		select {
		case b = <-g.free:
		default:
			g.blocks++
			b = blockPool(g.codec).get(func() *block {
				return &block{in: make([]byte, 0, g.codec.size), dict: make([]byte, 0, g.codec.window)}
			})
		}
	} else {
		b = <-g.free
	}
	b.in, b.dict, b.last, b.err = b.in[:0], b.dict[:0], false, nil
	b.out.Reset()
	b.ready = make(chan struct{})
	return b
}

func (g *blockWriter) setErr(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

func (g *blockWriter) getErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// writeLoop writes the header, then each block as it is ready, in order.
func (g *blockWriter) writeLoop() {
	defer close(g.done)
	if len(g.codec.header) > 0 {
		if _, err := g.out.Write(g.codec.header); err != nil {
			g.setErr(err)
		}
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
		select {
		case g.free <- b:
		default:
		}
	}
	// Every block is back: keep them for the next writer.
	p := blockPool(g.codec)
	for range len(g.free) {
		p.put(<-g.free)
	}
}

// Write compresses p.
func (g *blockWriter) Write(p []byte) (int, error) {
	if g.closed {
		return 0, fmt.Errorf("compressing a layer: write after close")
	}
	if err := g.getErr(); err != nil {
		return 0, err
	}
	n := len(p)
	if g.codec.sum != nil {
		g.codec.sum(p)
	}
	for len(p) > 0 {
		k := min(g.codec.size-len(g.cur.in), len(p))
		g.cur.in = append(g.cur.in, p[:k]...)
		p = p[k:]
		if len(g.cur.in) == g.codec.size {
			g.dispatch(false)
		}
	}
	return n, nil
}

func (g *blockWriter) dispatch(last bool) {
	b := g.cur
	b.last = last
	b.dict = append(b.dict[:0], g.dict...)
	if !last && g.codec.window > 0 {
		g.dict = append(g.dict[:0], b.in[len(b.in)-g.codec.window:]...)
	}
	g.queue <- b
	go func() {
		cpu <- struct{}{}
		defer func() { <-cpu }()
		b.err = g.codec.encode(&b.out, b.in, b.dict, b.last)
		close(b.ready)
	}()
	if !last {
		g.cur = g.block()
	}
}

// Close compresses what is left and writes the trailer; it does not close
// the underlying writer.
func (g *blockWriter) Close() error {
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
	if g.codec.trailer == nil {
		return nil
	}
	_, err := g.out.Write(g.codec.trailer())
	return err
}
