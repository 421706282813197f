package nar

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Listing is the `.ls` file a binary cache keeps next to a NAR: the tree of
// its entries with, for regular files, where their contents start in the
// uncompressed NAR.
type Listing struct {
	Root *Node
}

// Node is one node of a [Listing].
type Node struct {
	Type Type
	// Regular files.
	Size       uint64
	Executable bool
	NarOffset  uint64 // offset of the contents in the uncompressed NAR
	// Symbolic links.
	Target string
	// Directories, in NAR order (strictly increasing names).
	Entries []Entry
}

// Entry is a named child of a directory [Node].
type Entry struct {
	Name string
	Node *Node
}

// Marshal encodes the listing byte for byte as Lix and Nix 2.12–2.34 write
// it: compact JSON with sorted keys, `{"root":…,"version":1}`.
//
// Nix encodes with nlohmann::json, which refuses strings that are not valid
// UTF-8; so does Marshal, with an error naming the entry.
func (l *Listing) Marshal() ([]byte, error) {
	if l == nil || l.Root == nil {
		return nil, fmt.Errorf("nar: empty listing")
	}
	var b bytes.Buffer
	b.WriteString(`{"root":`)
	if err := encodeNode(&b, l.Root, "/"); err != nil {
		return nil, err
	}
	b.WriteString(`,"version":1}`)
	return b.Bytes(), nil
}

func encodeNode(b *bytes.Buffer, n *Node, path string) error {
	switch n.Type {
	case TypeRegular:
		// Keys in sorted order: executable, narOffset, size, type.
		b.WriteByte('{')
		if n.Executable {
			b.WriteString(`"executable":true,`)
		}
		// Nix omits a zero narOffset; a file's contents never start at 0.
		if n.NarOffset != 0 {
			b.WriteString(`"narOffset":`)
			b.WriteString(strconv.FormatUint(n.NarOffset, 10))
			b.WriteByte(',')
		}
		b.WriteString(`"size":`)
		b.WriteString(strconv.FormatUint(n.Size, 10))
		b.WriteString(`,"type":"regular"}`)
	case TypeSymlink:
		b.WriteString(`{"target":`)
		if err := encodeString(b, n.Target); err != nil {
			return fmt.Errorf("nar: listing: symlink target of %s: %v", path, err)
		}
		b.WriteString(`,"type":"symlink"}`)
	case TypeDirectory:
		b.WriteString(`{"entries":{`)
		for i, e := range n.Entries {
			if i > 0 {
				b.WriteByte(',')
			}
			child := path + e.Name
			if err := encodeString(b, e.Name); err != nil {
				return fmt.Errorf("nar: listing: name of %q: %v", child, err)
			}
			b.WriteByte(':')
			if err := encodeNode(b, e.Node, child+"/"); err != nil {
				return err
			}
		}
		b.WriteString(`},"type":"directory"}`)
	default:
		return fmt.Errorf("nar: listing: %s has unknown type %v", path, n.Type)
	}
	return nil
}

// encodeString writes s as nlohmann::json::dump() does: only '"', '\\' and
// control characters are escaped (\b \t \n \f \r, else \u00xx in lower
// case); everything else, including DEL, '/' and non-ASCII, is copied.
func encodeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return nil
}

// ReadListing reads a whole NAR from r and returns its listing.
func ReadListing(r io.Reader) (*Listing, error) {
	nr := NewReader(r)
	var root *Node
	var dirs []*Node // open directories, innermost last; dirs[i] is at depth i
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return &Listing{Root: root}, nil
		}
		if err != nil {
			return nil, err
		}
		n := &Node{Type: h.Type, Size: h.Size, Executable: h.Executable, NarOffset: h.Offset, Target: h.Target}
		if h.Path == "/" {
			root = n
		} else {
			depth := strings.Count(h.Path, "/")
			dirs = dirs[:depth]
			parent := dirs[depth-1]
			parent.Entries = append(parent.Entries, Entry{Name: h.Path[strings.LastIndexByte(h.Path, '/')+1:], Node: n})
		}
		if h.Type == TypeDirectory {
			dirs = append(dirs, n)
		}
	}
}
