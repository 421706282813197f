package nixdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Page types of SQLite's b-trees.
const (
	interiorIndex = 2
	interiorTable = 5
	leafIndex     = 10
	leafTable     = 13
)

// maxDepth bounds a descent, and lookupPages the pages one lookup may
// read: a malformed file must not loop.
const (
	maxDepth    = 20
	lookupPages = 1 << 16
	maxPayload  = 16 << 20 // bytes of one row or index entry
)

// node is a parsed b-tree page.
type node struct {
	data  []byte
	typ   byte
	cells []int // offsets of the cells
	right uint32
}

func (db *DB) node(n uint32) (*node, error) {
	if db.budget--; db.budget < 0 {
		return nil, errors.New("too many pages read for one lookup (a cycle in a malformed file?)")
	}
	if nd, ok := db.nodes[n]; ok {
		return nd, nil
	}
	data, err := db.page(n)
	if err != nil {
		return nil, err
	}
	h := 0
	if n == 1 {
		h = 100
	}
	if len(data) < h+8 {
		return nil, fmt.Errorf("page %d is short", n)
	}
	nd := &node{data: data, typ: data[h]}
	count := int(binary.BigEndian.Uint16(data[h+3:]))
	ptrs := h + 8
	switch nd.typ {
	case interiorIndex, interiorTable:
		nd.right = binary.BigEndian.Uint32(data[h+8:])
		ptrs = h + 12
	case leafIndex, leafTable:
	default:
		return nil, fmt.Errorf("page %d is not a b-tree page (type %d)", n, nd.typ)
	}
	if ptrs+2*count > len(data) {
		return nil, fmt.Errorf("page %d: %d cells do not fit", n, count)
	}
	nd.cells = make([]int, count)
	for i := range count {
		off := int(binary.BigEndian.Uint16(data[ptrs+2*i:]))
		if off < ptrs || off+4 > db.usable {
			return nil, fmt.Errorf("page %d: cell %d at %d is out of the page", n, i, off)
		}
		nd.cells[i] = off
	}
	if len(db.nodes) < cachePages {
		if db.nodes == nil {
			db.nodes = map[uint32]*node{}
		}
		db.nodes[n] = nd
	}
	return nd, nil
}

// varint reads one of SQLite's big-endian varints (1 to 9 bytes).
func varint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated varint")
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9, nil
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return v, 9, nil
}

// payload reads a cell's payload of size p starting at off of nd, with
// its overflow pages; index is whether the page is an index b-tree's.
func (db *DB) payload(nd *node, off int, p uint64, index bool) ([]byte, error) {
	u := uint64(db.usable)
	x := u - 35
	if index {
		x = (u-12)*64/255 - 23
	}
	if p > maxPayload {
		return nil, fmt.Errorf("a row of %d bytes (the Nix database's are far smaller)", p)
	}
	local := p
	if p > x {
		m := (u-12)*32/255 - 23
		local = m + (p-m)%(u-4)
		if local > x {
			local = m
		}
	}
	if uint64(off)+local > uint64(len(nd.data)) {
		return nil, errors.New("cell overflows its page")
	}
	out := make([]byte, 0, p)
	out = append(out, nd.data[off:off+int(local)]...)
	if local == p {
		return out, nil
	}
	if off+int(local)+4 > len(nd.data) {
		return nil, errors.New("cell overflows its page")
	}
	next := binary.BigEndian.Uint32(nd.data[off+int(local):])
	for uint64(len(out)) < p {
		if next == 0 || len(out) > int(p) {
			return nil, errors.New("overflow chain ends early")
		}
		pg, err := db.page(next)
		if err != nil {
			return nil, err
		}
		n := min(p-uint64(len(out)), u-4)
		out = append(out, pg[4:4+n]...)
		next = binary.BigEndian.Uint32(pg)
	}
	return out, nil
}

// record decodes a record: NULL is nil, integers int64, floats float64,
// text string, blobs []byte.
func record(b []byte) ([]any, error) {
	hsize, n, err := varint(b)
	if err != nil || hsize > uint64(len(b)) || int(hsize) < n {
		return nil, errors.New("malformed record header")
	}
	var vals []any
	body := int(hsize)
	for i := n; i < int(hsize); {
		t, k, err := varint(b[i:hsize])
		if err != nil {
			return nil, err
		}
		i += k
		var size int
		switch {
		case t <= 4:
			size = int(t)
		case t == 5:
			size = 6
		case t == 6 || t == 7:
			size = 8
		case t == 8 || t == 9:
			size = 0
		case t >= 12:
			size = int((t - 12) / 2)
		default:
			return nil, fmt.Errorf("serial type %d", t)
		}
		if body+size > len(b) {
			return nil, errors.New("record is short")
		}
		v := b[body : body+size]
		body += size
		switch {
		case t == 0:
			vals = append(vals, nil)
		case t <= 6:
			var x int64
			for j, c := range v {
				if j == 0 {
					x = int64(int8(c))
				} else {
					x = x<<8 | int64(c)
				}
			}
			vals = append(vals, x)
		case t == 7:
			vals = append(vals, math.Float64frombits(binary.BigEndian.Uint64(v)))
		case t == 8, t == 9:
			vals = append(vals, int64(t-8))
		case t%2 == 0:
			vals = append(vals, v)
		default:
			vals = append(vals, string(v))
		}
	}
	return vals, nil
}

// tableCell reads a table leaf cell: its rowid and record.
func (db *DB) tableCell(nd *node, off int) (int64, []any, error) {
	p, n, err := varint(nd.data[off:])
	if err != nil {
		return 0, nil, err
	}
	rowid, k, err := varint(nd.data[off+n:])
	if err != nil {
		return 0, nil, err
	}
	data, err := db.payload(nd, off+n+k, p, false)
	if err != nil {
		return 0, nil, err
	}
	rec, err := record(data)
	if err == nil && len(rec) > 0 && rec[0] == nil {
		rec[0] = int64(rowid) // the INTEGER PRIMARY KEY is the rowid
	}
	return int64(rowid), rec, err
}

// scanTable visits every row of the table b-tree at root, in rowid order,
// until visit says stop.
func (db *DB) scanTable(root uint32, visit func(int64, []any) (bool, error)) error {
	db.budget = lookupPages
	_, err := db.scanTableAt(root, visit, 0)
	return err
}

func (db *DB) scanTableAt(pg uint32, visit func(int64, []any) (bool, error), depth int) (bool, error) {
	if depth > maxDepth {
		return false, errors.New("b-tree too deep")
	}
	nd, err := db.node(pg)
	if err != nil {
		return false, err
	}
	switch nd.typ {
	case leafTable:
		for _, off := range nd.cells {
			rowid, rec, err := db.tableCell(nd, off)
			if err != nil {
				return false, err
			}
			if more, err := visit(rowid, rec); !more || err != nil {
				return false, err
			}
		}
		return true, nil
	case interiorTable:
		for _, off := range nd.cells {
			if off+4 > len(nd.data) {
				return false, errors.New("cell overflows its page")
			}
			if more, err := db.scanTableAt(binary.BigEndian.Uint32(nd.data[off:]), visit, depth+1); !more || err != nil {
				return false, err
			}
		}
		return db.scanTableAt(nd.right, visit, depth+1)
	}
	return false, fmt.Errorf("page %d is not a table b-tree page", pg)
}

// tableRow returns the record of rowid in the table b-tree at root, or
// nil.
func (db *DB) tableRow(root uint32, rowid int64) ([]any, error) {
	db.budget = lookupPages
	pg := root
	for depth := 0; depth <= maxDepth; depth++ {
		nd, err := db.node(pg)
		if err != nil {
			return nil, err
		}
		switch nd.typ {
		case leafTable:
			lo, hi := 0, len(nd.cells)
			for lo < hi {
				mid := (lo + hi) / 2
				id, rec, err := db.tableCell(nd, nd.cells[mid])
				switch {
				case err != nil:
					return nil, err
				case id == rowid:
					return rec, nil
				case id < rowid:
					lo = mid + 1
				default:
					hi = mid
				}
			}
			return nil, nil
		case interiorTable:
			next := nd.right
			lo, hi := 0, len(nd.cells)
			for lo < hi { // the first cell whose key is >= rowid
				mid := (lo + hi) / 2
				off := nd.cells[mid]
				key, _, err := varint(nd.data[off+4:])
				if err != nil {
					return nil, err
				}
				if int64(key) >= rowid {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			if lo < len(nd.cells) {
				next = binary.BigEndian.Uint32(nd.data[nd.cells[lo]:])
			}
			pg = next
		default:
			return nil, fmt.Errorf("page %d is not a table b-tree page", pg)
		}
	}
	return nil, errors.New("b-tree too deep")
}

// scanIndex visits, in order, the entries of the index b-tree at root for
// which cmp is 0; cmp says whether an entry sorts before (<0) or after
// (>0) the range wanted.
func (db *DB) scanIndex(root uint32, cmp func([]any) int, visit func([]any) error) error {
	db.budget = lookupPages
	_, err := db.scanIndexAt(root, cmp, visit, 0)
	return err
}

// scanIndexAt returns false once an entry after the range was seen.
func (db *DB) scanIndexAt(pg uint32, cmp func([]any) int, visit func([]any) error, depth int) (bool, error) {
	if depth > maxDepth {
		return false, errors.New("b-tree too deep")
	}
	nd, err := db.node(pg)
	if err != nil {
		return false, err
	}
	interior := nd.typ == interiorIndex
	if !interior && nd.typ != leafIndex {
		return false, fmt.Errorf("page %d is not an index b-tree page", pg)
	}
	entry := func(i int) ([]any, error) {
		off := nd.cells[i]
		if interior {
			off += 4
		}
		p, n, err := varint(nd.data[off:])
		if err != nil {
			return nil, err
		}
		data, err := db.payload(nd, off+n, p, true)
		if err != nil {
			return nil, err
		}
		return record(data)
	}
	// The first entry not before the range (binary search: entries are
	// sorted); the subtree left of it may hold the range's start.
	lo, hi := 0, len(nd.cells)
	for lo < hi {
		mid := (lo + hi) / 2
		rec, err := entry(mid)
		if err != nil {
			return false, err
		}
		if cmp(rec) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i <= len(nd.cells); i++ {
		if interior {
			child := nd.right
			if i < len(nd.cells) {
				child = binary.BigEndian.Uint32(nd.data[nd.cells[i]:])
			}
			if more, err := db.scanIndexAt(child, cmp, visit, depth+1); !more || err != nil {
				return false, err
			}
		}
		if i == len(nd.cells) {
			break
		}
		rec, err := entry(i)
		if err != nil {
			return false, err
		}
		if cmp(rec) > 0 {
			return false, nil
		}
		if err := visit(rec); err != nil {
			return false, err
		}
	}
	return true, nil
}
