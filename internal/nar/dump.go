package nar

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// does not depend on file sizes.
//
// It refuses (with an error naming the offending path) file types a NAR
// cannot hold (devices, sockets, fifos), entries [MaxDepth] or more levels
// deep, and names and symlink targets that [ValidateName] or
// [ValidateTarget] reject.
func DumpPath(w io.Writer, path string, opts DumpOptions) (*DumpResult, error) {
	if w == nil {
		w = io.Discard
	}
	var h hash.Hash
	if opts.Hash {
		h = sha256.New()
		w = io.MultiWriter(w, h)
	}
	d := &dumper{bw: bufio.NewWriterSize(w, 64<<10), listing: opts.Listing}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	d.str(magic)
	root, err := d.node(path, fi, 0)
	if err != nil {
		return nil, err
	}
	if err := d.bw.Flush(); err != nil {
		return nil, fmt.Errorf("nar: writing NAR of %s: %w", path, err)
	}
	if d.err != nil {
		return nil, fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	res := &DumpResult{Size: d.off}
	if h != nil {
		h.Sum(res.SHA256[:0])
	}
	if opts.Listing {
		res.Listing = &Listing{Root: root}
	}
	return res, nil
}

// dumper holds the state of one DumpPath call.
type dumper struct {
	bw      *bufio.Writer
	off     uint64 // bytes written so far
	err     error  // first write error
	listing bool
	scratch [8]byte
}

var zeros [8]byte

func padding(n uint64) int { return int((8 - n%8) % 8) }

func (d *dumper) write(p []byte) {
	if d.err != nil {
		return
	}
	n, err := d.bw.Write(p)
	d.off += uint64(n)
	d.err = err
}

func (d *dumper) u64(n uint64) {
	binary.LittleEndian.PutUint64(d.scratch[:], n)
	d.write(d.scratch[:])
}

func (d *dumper) str(s string) {
	d.u64(uint64(len(s)))
	if d.err != nil {
		return
	}
	n, err := d.bw.WriteString(s)
	d.off += uint64(n)
	d.err = err
	d.write(zeros[:padding(uint64(len(s)))])
}

// node writes the node for path, whose Lstat is fi, at nesting level depth,
// and returns its listing node when a listing is being built.
func (d *dumper) node(path string, fi fs.FileInfo, depth int) (*Node, error) {
	var n *Node
	if d.listing {
		n = &Node{}
	}
	d.str("(")
	d.str("type")
	switch mode := fi.Mode(); mode.Type() {
	case 0:
		if err := d.regular(path, fi, n); err != nil {
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
		return nil, fmt.Errorf("nar: refusing to serialise %s: unsupported file type (%s)", path, describeType(mode))
	}
	d.str(")")
	if d.err != nil {
		return nil, fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	return n, nil
}

func (d *dumper) regular(path string, fi fs.FileInfo, n *Node) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	if !os.SameFile(fi, st) || !st.Mode().IsRegular() {
		return fmt.Errorf("nar: %s changed while being serialised", path)
	}
	size := uint64(st.Size())
	executable := fi.Mode()&0o100 != 0
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
	if d.err != nil {
		return fmt.Errorf("nar: writing NAR of %s: %w", path, d.err)
	}
	copied, err := d.bw.ReadFrom(io.LimitReader(f, int64(size)))
	d.off += uint64(copied)
	if err != nil {
		return fmt.Errorf("nar: copying %s: %w", path, err)
	}
	if uint64(copied) != size {
		return fmt.Errorf("nar: %s shrank while being serialised (%d of %d bytes read)", path, copied, size)
	}
	d.write(zeros[:padding(size)])
	return nil
}

func (d *dumper) directory(path string, depth int, n *Node) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("nar: reading directory %s: %w", path, err)
	}
	// Go compares strings bytewise, which is the order Nix writes.
	slices.Sort(names)
	d.str("directory")
	if n != nil {
		n.Type = TypeDirectory
		n.Entries = make([]Entry, 0, len(names))
	}
	for _, name := range names {
		child := filepath.Join(path, name)
		if err := ValidateName(name); err != nil {
			return fmt.Errorf("nar: refusing to serialise %s: %v", child, err)
		}
		if depth+1 >= MaxDepth {
			return fmt.Errorf("nar: refusing to serialise %s: it is %d levels deep (limit %d)", child, depth+1, MaxDepth-1)
		}
		fi, err := os.Lstat(child)
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		d.str("entry")
		d.str("(")
		d.str("name")
		d.str(name)
		d.str("node")
		cn, err := d.node(child, fi, depth+1)
		if err != nil {
			return err
		}
		d.str(")")
		if n != nil {
			n.Entries = append(n.Entries, Entry{Name: name, Node: cn})
		}
	}
	return nil
}

func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "irregular file"
}
