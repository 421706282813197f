package nar

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/fsutil"
)

// Type is the type of a node in a NAR.
type Type uint8

// The three node types a NAR can hold.
const (
	TypeRegular Type = iota + 1
	TypeDirectory
	TypeSymlink
)

// String returns the name NAR and listings use for the type.
func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDirectory:
		return "directory"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// magic is the first token of every NAR.
const magic = "nix-archive-1"

// DumpOptions selects what [DumpPath] computes besides the NAR itself.
type DumpOptions struct {
	// Hash computes the sha256 of the NAR (Nix's NarHash).
	Hash bool
	// Listing builds the `.ls` listing of the NAR.
	Listing bool
}

// DumpResult is what [DumpPath] computed while writing the NAR.
type DumpResult struct {
	// Size is the number of bytes of the NAR (Nix's NarSize).
	Size uint64
	// SHA256 is the sha256 of the NAR, when DumpOptions.Hash is set.
	SHA256 [sha256.Size]byte
	// Listing is the `.ls` listing, when DumpOptions.Listing is set.
	Listing *Listing
}

// DumpPath writes the NAR serialisation of the file, directory or symbolic
// link at path to w, byte for byte as `nix-store --dump` writes it, and
// computes, in the same pass, what opts asks for. w may be nil to compute
// the hash, size or listing only. File contents are streamed; memory use
// does not depend on file sizes. When w is a [Sink], file contents are read
// straight into its memory.
//
// It refuses (with an error naming the offending path) file types a NAR
// cannot hold (devices, sockets, fifos), entries [MaxDepth] or more levels
// deep, and names and symlink targets that [ValidateName] or
// [ValidateTarget] reject.
func DumpPath(w io.Writer, path string, opts DumpOptions) (*DumpResult, error) {
	if w == nil {
		w = io.Discard
	}
	sink, ok := w.(Sink)
	if !ok {
		sink = NewBufferSink(w)
	}
	d := &dumper{sink: sink, listing: opts.Listing}
	if opts.Hash {
		d.hash = sha256.New()
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	d.str(magic)
	root, err := d.node(path, fi.Mode().Type(), 0)
	if err != nil {
		return nil, err
	}
	d.commit()
	if d.err == nil {
		d.err = sink.Flush()
	}
	if d.err != nil {
		return nil, fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	res := &DumpResult{Size: d.off}
	if d.hash != nil {
		d.hash.Sum(res.SHA256[:0])
	}
	if opts.Listing {
		res.Listing = &Listing{Root: root}
	}
	return res, nil
}

// A Sink is a writer that lends [DumpPath] its own memory: the NAR is
// written into the buffers it hands out, file contents read straight into
// them, so no bytes are copied between buffers.
type Sink interface {
	io.Writer
	// Buffer returns memory to fill (at least one byte long).
	Buffer() ([]byte, error)
	// Commit says the first n bytes of the last Buffer hold the next n
	// bytes of the NAR.
	Commit(n int) error
	// Flush passes on what was committed; it is called once, at the end.
	Flush() error
}

// dumpBuffer is the size of the buffer of a writer that is not a Sink.
const dumpBuffer = 256 << 10

// NewBufferSink returns the Sink of a plain writer: a buffer written out
// to w when full.
func NewBufferSink(w io.Writer) Sink { return &copySink{w: w, buf: make([]byte, dumpBuffer)} }

// copySink is the Sink of a plain writer: a buffer written out when full.
type copySink struct {
	w   io.Writer
	buf []byte
	n   int
}

func (s *copySink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *copySink) Buffer() ([]byte, error) {
	if s.n == len(s.buf) {
		if err := s.Flush(); err != nil {
			return nil, err
		}
	}
	return s.buf[s.n:], nil
}

func (s *copySink) Commit(n int) error {
	s.n += n
	return nil
}

func (s *copySink) Flush() error {
	if s.n == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf[:s.n])
	s.n = 0
	return err
}

// dumper holds the state of one DumpPath call. The NAR goes into cur, the
// sink's buffer, of which filled bytes are used; they are hashed and
// committed when it is full and at the end.
type dumper struct {
	sink    Sink
	hash    hash.Hash
	cur     []byte
	filled  int
	off     uint64 // bytes written so far
	err     error  // first write error
	listing bool
	scratch [8]byte
}

var zeros [8]byte

func padding(n uint64) int { return int((8 - n%8) % 8) }

// room returns the free part of the current buffer (empty on error).
func (d *dumper) room() []byte {
	if d.err != nil {
		return nil
	}
	if d.filled == len(d.cur) {
		d.commit()
		if d.err != nil {
			return nil
		}
		d.cur, d.err = d.sink.Buffer()
		if d.err == nil && len(d.cur) == 0 {
			d.err = io.ErrShortBuffer
		}
		if d.err != nil {
			return nil
		}
	}
	return d.cur[d.filled:]
}

// fill records that n more bytes of the current buffer are the NAR's.
func (d *dumper) fill(n int) {
	d.filled += n
	d.off += uint64(n)
}

// commit hashes and hands over what the current buffer holds.
func (d *dumper) commit() {
	if d.filled == 0 || d.err != nil {
		return
	}
	if d.hash != nil {
		d.hash.Write(d.cur[:d.filled])
	}
	d.err = d.sink.Commit(d.filled)
	d.cur, d.filled = nil, 0
}

func (d *dumper) write(p []byte) { emit(d, p) }

// emit copies p into the NAR.
func emit[T string | []byte](d *dumper, p T) {
	for len(p) > 0 {
		r := d.room()
		if r == nil {
			return
		}
		n := copy(r, p)
		d.fill(n)
		p = p[n:]
	}
}

func (d *dumper) u64(n uint64) {
	binary.LittleEndian.PutUint64(d.scratch[:], n)
	d.write(d.scratch[:])
}

func (d *dumper) str(s string) {
	d.u64(uint64(len(s)))
	emit(d, s)
	d.write(zeros[:padding(uint64(len(s)))])
}

// node writes the node for path, of type typ (fs.FileMode type bits), at
// nesting level depth, and returns its listing node when a listing is
// being built.
func (d *dumper) node(path string, typ fs.FileMode, depth int) (*Node, error) {
	var n *Node
	if d.listing {
		n = &Node{}
	}
	d.str("(")
	d.str("type")
	switch typ {
	case 0:
		if err := d.regular(path, n); err != nil {
			return nil, err
		}
	case fs.ModeSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, fmt.Errorf("nar: %w", err)
		}
		if err := ValidateTarget(target); err != nil {
			return nil, fmt.Errorf("nar: refusing to serialise %s: %v", path, err)
		}
		d.str("symlink")
		d.str("target")
		d.str(target)
		if n != nil {
			n.Type, n.Target = TypeSymlink, target
		}
	case fs.ModeDir:
		if err := d.directory(path, depth, n); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("nar: refusing to serialise %s: unsupported file type (%s)", path, fsutil.DescribeMode(typ))
	}
	d.str(")")
	if d.err != nil {
		return nil, fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	return n, nil
}

func (d *dumper) regular(path string, n *Node) error {
	f, err := openRegular(path)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	defer f.close()
	size := uint64(f.Size)
	executable := f.Mode&0o100 != 0
	d.str("regular")
	if executable {
		d.str("executable")
		d.str("")
	}
	d.str("contents")
	d.u64(size)
	if n != nil {
		n.Type, n.Size, n.Executable, n.NarOffset = TypeRegular, size, executable, d.off
	}
	var copied uint64
	for copied < size {
		r := d.room()
		if r == nil {
			break
		}
		r = r[:min(uint64(len(r)), size-copied)]
		k, err := f.read(r)
		d.fill(k)
		copied += uint64(k)
		if err != nil {
			return fmt.Errorf("nar: copying %s: %w", path, err)
		}
		if k == 0 {
			return fmt.Errorf("nar: %s shrank while being serialised (%d of %d bytes read)", path, copied, size)
		}
	}
	if d.err != nil {
		return fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	d.write(zeros[:padding(size)])
	return nil
}

func (d *dumper) directory(path string, depth int, n *Node) error {
	entries, err := readDir(path)
	if err != nil {
		return fmt.Errorf("nar: reading directory %s: %w", path, err)
	}
	// Go compares strings bytewise, which is the order Nix writes.
	slices.SortFunc(entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	d.str("directory")
	if n != nil {
		n.Type = TypeDirectory
		n.Entries = make([]Entry, 0, len(entries))
	}
	for _, e := range entries {
		child := filepath.Join(path, e.Name)
		if err := ValidateName(e.Name); err != nil {
			return fmt.Errorf("nar: refusing to serialise %s: %v", child, err)
		}
		if depth+1 >= MaxDepth {
			return fmt.Errorf("nar: refusing to serialise %s: it is %d levels deep (limit %d)", child, depth+1, MaxDepth-1)
		}
		d.str("entry")
		d.str("(")
		d.str("name")
		d.str(e.Name)
		d.str("node")
		cn, err := d.node(child, e.Type, depth+1)
		if err != nil {
			return err
		}
		d.str(")")
		if n != nil {
			n.Entries = append(n.Entries, Entry{Name: e.Name, Node: cn})
		}
	}
	return nil
}

// DirEntry is a directory entry: its name and type (fs.FileMode type
// bits).
type DirEntry struct {
	Name string
	Type fs.FileMode
}

// File is a regular file opened for reading by [OpenFile], with the size
// and mode the open file reports (permission, setuid, setgid and sticky
// bits).
type File struct {
	Size  int64
	Mode  fs.FileMode
	read  func([]byte) (int, error) // 0, nil at the end
	close func() error
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.read(p)
	if n == 0 && err == nil && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}

// Close closes the file.
func (f *File) Close() error { return f.close() }

// changedError says that path is no longer what its directory entry said.
func changedError(path string) error {
	return fmt.Errorf("%s changed while being serialised", path)
}

// OpenFile opens the regular file at path as DumpPath does: a symbolic
// link is not followed, and on Linux the file is read with plain system
// calls (os.Open costs four fcntl and an epoll registration per file).
// Anything but a regular file is an error.
func OpenFile(path string) (*File, error) { return openRegular(path) }

// ReadDir returns the entries of the directory at path, in no particular
// order, with their types (from getdents on Linux: no lstat per entry).
func ReadDir(path string) ([]DirEntry, error) { return readDir(path) }
