package nar

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Header describes one entry of a NAR, as returned by [Reader.Next].
type Header struct {
	// Path is "/" for the root of the archive and "/a/b" for the entry b
	// of the directory a. Every component has passed [ValidateName].
	Path string
	Type Type
	// Regular files.
	Executable bool
	Size       uint64 // length of the contents
	Offset     uint64 // offset of the contents in the NAR
	// Symbolic links; passed [ValidateTarget].
	Target string
}

// FormatError reports a NAR that is malformed, truncated, or holds
// something [ValidateName], [ValidateTarget] or [MaxDepth] refuse.
type FormatError struct {
	Offset uint64 // byte offset at which the problem was detected
	Path   string // the entry being read, or "" before the root
	Err    error
}

func (e *FormatError) Error() string {
	where := ""
	if e.Path != "" {
		where = " (" + e.Path + ")"
	}
	return fmt.Sprintf("nar: invalid archive at byte %d%s: %v", e.Offset, where, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// maxKeyword bounds the tokens of the NAR grammar ("nix-archive-1" is the
// longest).
const maxKeyword = 16

// Reader reads the entries of a NAR one by one, like archive/tar.Reader.
// It trusts nothing in its input: all lengths are checked before any
// allocation, padding must be zero, directory entries must be in strictly
// increasing order (so unique), names and targets are validated, and
// nesting is limited to [MaxDepth]. Only the canonical form that
// `nix-store --dump` writes is accepted, so a NAR that reads without error
// re-serialises to the same bytes.
//
// Reader buffers its input and may read past the end of the NAR.
type Reader struct {
	br      *bufio.Reader
	off     uint64
	err     error // sticky
	started bool
	done    bool
	stack   []frame // open directories, innermost last
	path    string  // path of the current node, for errors

	inFile    bool   // contents of a regular file are pending
	remaining uint64 // unread bytes of those contents
	fileSize  uint64
	needEnd   bool // current node's ")" read, the enclosing entry's is not
	scratch   [8]byte
}

type frame struct {
	path  string
	depth int
	prev  string // name of the last entry, "" before the first
}

// NewReader returns a Reader reading a NAR from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next advances to the next entry and returns its header. Entries come in
// NAR order: a directory before its entries, entries in increasing name
// order. At the end of the archive it returns io.EOF. What is left of the
// contents of a regular file is skipped.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	h, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return h, nil
}

func (r *Reader) next() (*Header, error) {
	if !r.started {
		r.started = true
		if err := r.expect(magic); err != nil {
			return nil, err
		}
		if err := r.expect("("); err != nil {
			return nil, err
		}
		return r.node("/", 0)
	}
	if r.inFile {
		if err := r.finishFile(); err != nil {
			return nil, err
		}
	}
	if r.needEnd {
		if err := r.endNode(); err != nil {
			return nil, err
		}
	}
	for len(r.stack) > 0 {
		top := &r.stack[len(r.stack)-1]
		r.path = top.path
		tok, err := r.str(maxKeyword)
		if err != nil {
			return nil, err
		}
		switch tok {
		case "entry":
			return r.entry(top)
		case ")":
			r.stack = r.stack[:len(r.stack)-1]
			if err := r.endNode(); err != nil {
				return nil, err
			}
		default:
			return nil, r.errorf("expected \"entry\" or \")\", got %q", tok)
		}
	}
	return nil, io.EOF
}

// entry reads a directory entry up to and including its node's header.
func (r *Reader) entry(dir *frame) (*Header, error) {
	if err := r.expect("("); err != nil {
		return nil, err
	}
	if err := r.expect("name"); err != nil {
		return nil, err
	}
	name, err := r.str(MaxNameLen)
	if err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, r.errorf("%v", err)
	}
	if dir.prev != "" && name <= dir.prev {
		if name == dir.prev {
			return nil, r.errorf("duplicate entry %q", name)
		}
		return nil, r.errorf("entry %q is not sorted after %q", name, dir.prev)
	}
	dir.prev = name
	child := dir.path + name
	if dir.path != "/" {
		child = dir.path + "/" + name
	}
	r.path = child
	depth := dir.depth + 1
	if depth >= MaxDepth {
		return nil, r.errorf("entry is %d levels deep (limit %d)", depth, MaxDepth-1)
	}
	if err := r.expect("node"); err != nil {
		return nil, err
	}
	if err := r.expect("("); err != nil {
		return nil, err
	}
	return r.node(child, depth)
}

// node reads a node's header; its "(" has been read.
func (r *Reader) node(path string, depth int) (*Header, error) {
	r.path = path
	if err := r.expect("type"); err != nil {
		return nil, err
	}
	typ, err := r.str(maxKeyword)
	if err != nil {
		return nil, err
	}
	h := &Header{Path: path}
	switch typ {
	case "regular":
		h.Type = TypeRegular
		tok, err := r.str(maxKeyword)
		if err != nil {
			return nil, err
		}
		if tok == "executable" {
			h.Executable = true
			if err := r.expect(""); err != nil {
				return nil, err
			}
			if tok, err = r.str(maxKeyword); err != nil {
				return nil, err
			}
		}
		if tok != "contents" {
			return nil, r.errorf("expected \"contents\", got %q", tok)
		}
		size, err := r.u64()
		if err != nil {
			return nil, err
		}
		if size > math.MaxInt64 {
			return nil, r.errorf("file size %d is too large", size)
		}
		h.Size, h.Offset = size, r.off
		r.inFile, r.remaining, r.fileSize = true, size, size
	case "symlink":
		h.Type = TypeSymlink
		if err := r.expect("target"); err != nil {
			return nil, err
		}
		target, err := r.str(MaxTargetLen)
		if err != nil {
			return nil, err
		}
		if err := ValidateTarget(target); err != nil {
			return nil, r.errorf("%v", err)
		}
		h.Target = target
		if err := r.expect(")"); err != nil {
			return nil, err
		}
		r.needEnd = true
	case "directory":
		h.Type = TypeDirectory
		r.stack = append(r.stack, frame{path: path, depth: depth})
	default:
		return nil, r.errorf("unknown node type %q", typ)
	}
	return h, nil
}

// finishFile skips what is left of the current file's contents, checks
// the padding and reads the node's ")".
func (r *Reader) finishFile() error {
	if r.remaining > 0 {
		n, err := io.CopyN(io.Discard, r.br, int64(r.remaining))
		r.off += uint64(n)
		r.remaining -= uint64(n)
		if err != nil {
			return r.readErr(err)
		}
	}
	r.inFile = false
	if err := r.pad(r.fileSize); err != nil {
		return err
	}
	if err := r.expect(")"); err != nil {
		return err
	}
	r.needEnd = true
	return nil
}

// endNode is called once a node's ")" has been read: it reads the ")"
// closing the directory entry around it, or ends the archive at the root.
func (r *Reader) endNode() error {
	r.needEnd = false
	if len(r.stack) == 0 {
		r.done = true
		return nil
	}
	return r.expect(")")
}

func (r *Reader) errorf(format string, args ...any) error {
	return &FormatError{Offset: r.off, Path: r.path, Err: fmt.Errorf(format, args...)}
}

// readErr turns an error of the underlying reader into the error to return.
func (r *Reader) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &FormatError{Offset: r.off, Path: r.path, Err: fmt.Errorf("truncated archive: %w", io.ErrUnexpectedEOF)}
	}
	return fmt.Errorf("nar: reading at byte %d: %w", r.off, err)
}

func (r *Reader) full(p []byte) error {
	n, err := io.ReadFull(r.br, p)
	r.off += uint64(n)
	if err != nil {
		return r.readErr(err)
	}
	return nil
}

func (r *Reader) u64() (uint64, error) {
	if err := r.full(r.scratch[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.scratch[:]), nil
}

func (r *Reader) pad(n uint64) error {
	p := r.scratch[:padding(n)]
	if err := r.full(p); err != nil {
		return err
	}
	for _, b := range p {
		if b != 0 {
			return r.errorf("non-zero padding")
		}
	}
	return nil
}

// str reads a string token of at most max bytes.
func (r *Reader) str(max int) (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", r.errorf("string of %d bytes, at most %d allowed here", n, max)
	}
	buf := make([]byte, n)
	if err := r.full(buf); err != nil {
		return "", err
	}
	if err := r.pad(n); err != nil {
		return "", err
	}
	return string(buf), nil
}

func (r *Reader) expect(want string) error {
	got, err := r.str(maxKeyword)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return r.errorf("expected %q: %v", want, fe.Err)
		}
		return err
	}
	if got != want {
		return r.errorf("expected %q, got %q", want, got)
	}
	return nil
}
