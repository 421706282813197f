// Package nixdb reads the path information of a closure straight from the
// local Nix database (NIX_STATE_DIR/db/db.sqlite, schema 10 of Nix 2.x and
// Lix), read-only and without a SQLite library: the ValidPaths table and
// the (referrer, reference) index of Refs, looked up through their
// b-trees, with the committed frames of the write-ahead log (db.sqlite-wal)
// over the main file. It takes no lock, so a write by Nix at the same
// moment can make a read fail; callers then ask Nix (`nix path-info`),
// as they do for anything this reader does not understand.
//
// binarycache.LoadClosure reads every closure of the local store through
// it (cache push, image builds, `releng closure`): no `nix path-info`
// process to start (about 50 ms), and only the pages of the closure's
// rows read.
package nixdb

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/releng-project/releng/internal/nixstore"
)

// ErrNotValid is Closure's error for a root the database does not hold.
var ErrNotValid = errors.New("is not a valid path in the Nix database")

// Path is where Nix keeps its database under stateDir (NIX_STATE_DIR;
// /nix/var/nix when empty).
func Path(stateDir string) string {
	if stateDir == "" {
		stateDir = "/nix/var/nix"
	}
	return filepath.Join(stateDir, "db", "db.sqlite")
}

// DB is an open Nix database; not safe for concurrent use.
type DB struct {
	f        *os.File
	wal      *os.File
	pageSize int
	usable   int
	frames   map[uint32]int64 // page → offset of its newest committed WAL frame
	pages    uint32           // database size in pages
	budget   int              // pages the current lookup may still read
	nodes    map[uint32]*node // parsed pages, at most cachePages
	// roots of the b-trees used
	validPaths, pathIndex, refsIndex uint32
}

// Open opens the database at path read-only.
func Open(path string) (*DB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	db := &DB{f: f}
	if err := db.initSafe(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return db, nil
}

// Close closes the database files.
func (db *DB) Close() error {
	if db.wal != nil {
		db.wal.Close()
	}
	return db.f.Close()
}

func (db *DB) initSafe(path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed database: %v", r)
		}
	}()
	return db.init(path)
}

func (db *DB) init(path string) error {
	var h [100]byte
	if _, err := db.f.ReadAt(h[:], 0); err != nil {
		return err
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return errors.New("not a SQLite database")
	}
	db.pageSize = int(binary.BigEndian.Uint16(h[16:]))
	if db.pageSize == 1 {
		db.pageSize = 65536
	}
	if db.pageSize < 512 || db.pageSize&(db.pageSize-1) != 0 {
		return fmt.Errorf("page size %d", db.pageSize)
	}
	db.usable = db.pageSize - int(h[20])
	if enc := binary.BigEndian.Uint32(h[56:]); enc != 1 && enc != 0 {
		return fmt.Errorf("text encoding %d is not UTF-8", enc)
	}
	db.pages = binary.BigEndian.Uint32(h[28:])
	if err := db.readWAL(path + "-wal"); err != nil {
		return err
	}
	return db.readSchema()
}

// readWAL indexes the frames of the write-ahead log up to its last valid
// commit (salts matching the header's, checksums chaining).
func (db *DB) readWAL(path string) error {
	w, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	db.wal = w
	var h [32]byte
	if _, err := io.ReadFull(io.NewSectionReader(w, 0, 32), h[:]); err != nil {
		return nil // empty or short: no frames
	}
	magic := binary.BigEndian.Uint32(h[:])
	if magic != 0x377f0682 && magic != 0x377f0683 {
		return nil
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	if int(binary.BigEndian.Uint32(h[8:])) != db.pageSize {
		return nil
	}
	s0, s1 := walChecksum(order, h[:24], 0, 0)
	if s0 != binary.BigEndian.Uint32(h[24:]) || s1 != binary.BigEndian.Uint32(h[28:]) {
		return nil
	}
	frames := map[uint32]int64{}
	committed := map[uint32]int64{}
	frame := make([]byte, 24+db.pageSize)
	for off := int64(32); ; off += int64(len(frame)) {
		if _, err := w.ReadAt(frame, off); err != nil {
			break
		}
		if !bytes.Equal(frame[8:16], h[16:24]) {
			break
		}
		s0, s1 = walChecksum(order, frame[:8], s0, s1)
		s0, s1 = walChecksum(order, frame[24:], s0, s1)
		if s0 != binary.BigEndian.Uint32(frame[16:]) || s1 != binary.BigEndian.Uint32(frame[20:]) {
			break
		}
		frames[binary.BigEndian.Uint32(frame[:4])] = off + 24
		if size := binary.BigEndian.Uint32(frame[4:]); size != 0 {
			for p, o := range frames {
				committed[p] = o
			}
			db.pages = size
		}
	}
	db.frames = committed
	return nil
}

func walChecksum(order binary.ByteOrder, b []byte, s0, s1 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s0 += order.Uint32(b[i:]) + s1
		s1 += order.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}

// page reads page n (1-based), from the WAL when it holds it.
func (db *DB) page(n uint32) ([]byte, error) {
	if n == 0 || n > db.pages {
		return nil, fmt.Errorf("page %d is out of range (%d pages)", n, db.pages)
	}
	buf := make([]byte, db.pageSize)
	var err error
	if off, ok := db.frames[n]; ok {
		_, err = db.wal.ReadAt(buf, off)
	} else {
		_, err = db.f.ReadAt(buf, int64(n-1)*int64(db.pageSize))
	}
	return buf, err
}

// cachePages is how many parsed b-tree pages a DB keeps (the interior
// pages are read again by every lookup).
const cachePages = 4096

// readSchema finds the root pages of ValidPaths and of the indexes on
// ValidPaths(path) and Refs(referrer, reference) in sqlite_master.
func (db *DB) readSchema() error {
	err := db.scanTable(1, func(_ int64, rec []any) (bool, error) {
		if len(rec) < 5 {
			return false, errors.New("malformed sqlite_master row")
		}
		typ, _ := rec[0].(string)
		name, _ := rec[1].(string)
		table, _ := rec[2].(string)
		root, _ := rec[3].(int64)
		switch {
		case typ == "table" && name == "ValidPaths":
			db.validPaths = uint32(root)
		case typ == "index" && table == "ValidPaths" && (name == "sqlite_autoindex_ValidPaths_1"):
			db.pathIndex = uint32(root)
		case typ == "index" && table == "Refs" && name == "sqlite_autoindex_Refs_1":
			db.refsIndex = uint32(root)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if db.validPaths == 0 || db.pathIndex == 0 || db.refsIndex == 0 {
		return errors.New("not a Nix database of schema 10 (ValidPaths, Refs and their indexes)")
	}
	return nil
}

// Closure returns the path information of the closure of roots (what
// `nix path-info --json --recursive` gives: NAR hash and size, references,
// deriver, signatures, content address), which must be in storeDir, in
// the order the walk found them.
func (db *DB) Closure(storeDir string, roots []nixstore.StorePath) (infos []nixstore.PathInfo, err error) {
	defer func() {
		// Offsets are checked where a page is parsed; this is the last
		// guard against a malformed (or concurrently rewritten) file.
		if r := recover(); r != nil {
			infos, err = nil, fmt.Errorf("%s: malformed database: %v", db.f.Name(), r)
		}
	}()
	index := map[int64]int{} // id → position in order
	var order []int64
	var refs [][]int64
	add := func(id int64) {
		if _, ok := index[id]; !ok {
			index[id] = len(order)
			order = append(order, id)
		}
	}
	for _, r := range roots {
		id, err := db.pathID(r.String())
		if err != nil {
			return nil, err
		}
		if id < 0 {
			return nil, fmt.Errorf("%s %w", r, ErrNotValid)
		}
		add(id)
	}
	for i := 0; i < len(order); i++ {
		pi, err := db.validPath(storeDir, order[i])
		if err != nil {
			return nil, err
		}
		infos = append(infos, pi)
		r, err := db.references(order[i])
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
		for _, ref := range r {
			add(ref)
		}
	}
	for i := range infos {
		for _, ref := range refs[i] {
			infos[i].References = append(infos[i].References, infos[index[ref]].Path)
		}
		slices.SortFunc(infos[i].References, func(a, b nixstore.StorePath) int { return strings.Compare(a.String(), b.String()) })
	}
	return infos, nil
}

// pathID looks path up in the index on ValidPaths(path): its id, or -1.
func (db *DB) pathID(path string) (int64, error) {
	id := int64(-1)
	err := db.scanIndex(db.pathIndex, func(rec []any) int {
		s, _ := rec[0].(string)
		return strings.Compare(s, path)
	}, func(rec []any) error {
		if len(rec) < 2 {
			return errors.New("malformed ValidPaths index entry")
		}
		id, _ = rec[1].(int64)
		return nil
	})
	return id, err
}

// references returns the ids a path refers to, from the index on
// Refs(referrer, reference).
func (db *DB) references(id int64) ([]int64, error) {
	var out []int64
	err := db.scanIndex(db.refsIndex, func(rec []any) int {
		r, _ := rec[0].(int64)
		return cmp.Compare(r, id)
	}, func(rec []any) error {
		if len(rec) < 2 {
			return errors.New("malformed Refs index entry")
		}
		ref, ok := rec[1].(int64)
		if !ok {
			return errors.New("malformed Refs index entry")
		}
		out = append(out, ref)
		return nil
	})
	return out, err
}

// validPath reads the path and narSize of row id of ValidPaths.
func (db *DB) validPath(storeDir string, id int64) (nixstore.PathInfo, error) {
	rec, err := db.tableRow(db.validPaths, id)
	if err != nil {
		return nixstore.PathInfo{}, err
	}
	if rec == nil {
		return nixstore.PathInfo{}, fmt.Errorf("ValidPaths has no row %d, which Refs names", id)
	}
	// ValidPaths(id, path, hash, registrationTime, deriver, narSize,
	// ultimate, sigs, ca); a row older than a column, or NULL, reads as
	// Nix reads it: empty.
	col := func(i int) string {
		if i < len(rec) {
			v, _ := rec[i].(string)
			return v
		}
		return ""
	}
	path := col(1)
	if path == "" {
		return nixstore.PathInfo{}, fmt.Errorf("ValidPaths row %d has no path", id)
	}
	pi := nixstore.PathInfo{CA: col(8), Signatures: strings.Fields(col(7))}
	if pi.Path, err = nixstore.ParseStorePath(storeDir, path); err != nil {
		return nixstore.PathInfo{}, err
	}
	if pi.NarHash, err = nixstore.ParseHash(col(2)); err != nil {
		return nixstore.PathInfo{}, fmt.Errorf("ValidPaths row %d (%s): %w", id, path, err)
	}
	if len(rec) > 5 {
		n, _ := rec[5].(int64)
		pi.NarSize = uint64(max(n, 0))
	}
	if d := col(4); d != "" {
		if pi.Deriver, err = nixstore.ParseStorePath(storeDir, d); err != nil {
			return nixstore.PathInfo{}, fmt.Errorf("ValidPaths row %d (%s): deriver: %w", id, path, err)
		}
	}
	return pi, nil
}
