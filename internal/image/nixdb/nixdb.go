// Package nixdb writes the Nix database of an image: a SQLite file
// registering the image's store paths with their hashes, sizes and
// references, so that `nix` and `nix-store` work inside the container
// (SPEC §3.6 nix_db, §8.2 step 4).
//
// The file is written natively — no sqlite library, no `nix-store
// --load-db` — and reproducibly: the same paths give the same bytes. It
// holds Nix's schema version 10 (Nix 2.x and Lix) exactly as Nix creates
// it: the tables ValidPaths, Refs and DerivationOutputs, their indexes and
// the DeleteSelfRefs trigger, as b-trees of 4096-byte pages in SQLite's
// file format 4 with rollback journaling (Nix switches it to WAL when it
// opens it writable).
package nixdb

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
)

// Paths in the image where the database lives.
const (
	Dir        = "/nix/var/nix/db"
	DBFile     = Dir + "/db.sqlite"
	SchemaFile = Dir + "/schema"
	// SchemaVersion is Nix's nixSchemaVersion, written to SchemaFile.
	SchemaVersion = "10"
)

// Path is one store path to register.
type Path struct {
	Path       string   // absolute store path
	NarHash    [32]byte // sha256 of the NAR
	NarSize    uint64
	References []string // absolute store paths, all registered too; may include Path
	Deriver    string   // absolute .drv path, or ""
	CA         string   // content address, or ""
}

// The schema exactly as Nix 2.x stores it in sqlite_master.
const (
	sqlValidPaths = `CREATE TABLE ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer, -- null implies "false"
    sigs             text, -- space-separated
    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo
)`
	sqlSequence = `CREATE TABLE sqlite_sequence(name,seq)`
	sqlRefs     = `CREATE TABLE Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
)`
	sqlIndexReferrer  = `CREATE INDEX IndexReferrer on Refs(referrer)`
	sqlIndexReference = `CREATE INDEX IndexReference on Refs(reference)`
	sqlTrigger        = `CREATE TRIGGER DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end`
	sqlDerivationOutputs = `CREATE TABLE DerivationOutputs (
    drv  integer not null,
    id   text not null, -- symbolic output id, usually "out"
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
)`
	sqlIndexDerivationOutputs = `CREATE INDEX IndexDerivationOutputs on DerivationOutputs(path)`
)

// Write returns the bytes of a database registering paths, each with the
// given registration time (seconds since the epoch). Every reference must
// be among paths.
func Write(paths []Path, registrationTime int64) ([]byte, error) {
	sorted := append([]Path(nil), paths...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	ids := map[string]int64{}
	for i, p := range sorted {
		if _, dup := ids[p.Path]; dup {
			return nil, fmt.Errorf("nix database: %s listed twice", p.Path)
		}
		ids[p.Path] = int64(i + 1)
	}

	w := &writer{}
	w.alloc() // page 1: sqlite_master

	// ValidPaths and its unique index on path.
	var vpRows []tableRow
	var vpIndex []indexKey
	type ref struct{ referrer, reference int64 }
	var refs []ref
	for _, p := range sorted {
		id := ids[p.Path]
		deriver, ca := nullable(p.Deriver), nullable(p.CA)
		payload, err := record(nil, p.Path, "sha256:"+hex.EncodeToString(p.NarHash[:]), registrationTime, deriver, int64(p.NarSize), nil, nil, ca)
		if err != nil {
			return nil, err
		}
		vpRows = append(vpRows, tableRow{rowid: id, payload: payload})
		vpIndex = append(vpIndex, indexKey{text: p.Path, ints: []int64{id}})
		seen := map[int64]bool{}
		for _, r := range p.References {
			rid, ok := ids[r]
			if !ok {
				return nil, fmt.Errorf("nix database: %s refers to %s, which is not in the image", p.Path, r)
			}
			if !seen[rid] {
				seen[rid] = true
				refs = append(refs, ref{id, rid})
			}
		}
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].referrer != refs[j].referrer {
			return refs[i].referrer < refs[j].referrer
		}
		return refs[i].reference < refs[j].reference
	})
	var refRows []tableRow
	var refPK, refByReferrer, refByReference []indexKey
	for i, r := range refs {
		rowid := int64(i + 1)
		payload, _ := record(r.referrer, r.reference)
		refRows = append(refRows, tableRow{rowid: rowid, payload: payload})
		refPK = append(refPK, indexKey{ints: []int64{r.referrer, r.reference, rowid}})
		refByReferrer = append(refByReferrer, indexKey{ints: []int64{r.referrer, rowid}})
		refByReference = append(refByReference, indexKey{ints: []int64{r.reference, rowid}})
	}
	var seqRows []tableRow
	if len(sorted) > 0 {
		payload, _ := record("ValidPaths", int64(len(sorted)))
		seqRows = []tableRow{{rowid: 1, payload: payload}}
	}

	type entry struct {
		typ, name, tbl string
		root           uint32
		sql            any
	}
	var schema []entry
	add := func(typ, name, tbl string, root uint32, sql any) {
		schema = append(schema, entry{typ, name, tbl, root, sql})
	}
	var err error
	var root uint32
	if root, err = w.table(vpRows); err != nil {
		return nil, err
	}
	add("table", "ValidPaths", "ValidPaths", root, sqlValidPaths)
	if root, err = w.index(vpIndex); err != nil {
		return nil, err
	}
	add("index", "sqlite_autoindex_ValidPaths_1", "ValidPaths", root, nil)
	if root, err = w.table(seqRows); err != nil {
		return nil, err
	}
	add("table", "sqlite_sequence", "sqlite_sequence", root, sqlSequence)
	if root, err = w.table(refRows); err != nil {
		return nil, err
	}
	add("table", "Refs", "Refs", root, sqlRefs)
	for _, ix := range []struct {
		name string
		keys []indexKey
		sql  any
	}{
		{"sqlite_autoindex_Refs_1", refPK, nil},
		{"IndexReferrer", refByReferrer, sqlIndexReferrer},
		{"IndexReference", refByReference, sqlIndexReference},
	} {
		if root, err = w.index(ix.keys); err != nil {
			return nil, err
		}
		add("index", ix.name, "Refs", root, ix.sql)
	}
	add("trigger", "DeleteSelfRefs", "ValidPaths", 0, sqlTrigger)
	if root, err = w.table(nil); err != nil {
		return nil, err
	}
	add("table", "DerivationOutputs", "DerivationOutputs", root, sqlDerivationOutputs)
	if root, err = w.index(nil); err != nil {
		return nil, err
	}
	add("index", "sqlite_autoindex_DerivationOutputs_1", "DerivationOutputs", root, nil)
	if root, err = w.index(nil); err != nil {
		return nil, err
	}
	add("index", "IndexDerivationOutputs", "DerivationOutputs", root, sqlIndexDerivationOutputs)

	// sqlite_master on page 1, after the 100-byte file header.
	var master [][]byte
	for i, e := range schema {
		payload, err := record(e.typ, e.name, e.tbl, int64(e.root), e.sql)
		if err != nil {
			return nil, err
		}
		master = append(master, tableCell(int64(i+1), payload))
	}
	if !fits(100, leafHeader, master) {
		return nil, fmt.Errorf("nix database: the schema does not fit the first page")
	}
	writePage(w.pages[0], 100, pageTableLeaf, master, 0)
	w.header()

	out := make([]byte, 0, len(w.pages)*pageSize)
	for _, p := range w.pages {
		out = append(out, p...)
	}
	return out, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const (
	pageSize = 4096
	// The largest payloads stored without overflow pages (SQLite's X for
	// table leaves and for index pages, with no reserved bytes).
	maxTablePayload = pageSize - 35
	maxIndexPayload = (pageSize-12)*64/255 - 23

	pageIndexInterior = 0x02
	pageTableInterior = 0x05
	pageIndexLeaf     = 0x0a
	pageTableLeaf     = 0x0d

	leafHeader     = 8
	interiorHeader = 12

	// sqliteVersion is written to the header as the "last writer" version.
	sqliteVersion = 3040001
)

type writer struct {
	pages [][]byte
}

func (w *writer) alloc() uint32 {
	w.pages = append(w.pages, make([]byte, pageSize))
	return uint32(len(w.pages))
}

func (w *writer) page(n uint32) []byte { return w.pages[n-1] }

// header fills the 100-byte database header of page 1.
func (w *writer) header() {
	h := w.pages[0][:100]
	copy(h, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(h[16:], pageSize)
	h[18], h[19] = 1, 1 // rollback journal; Nix turns on WAL when it opens the file
	h[20] = 0           // reserved bytes per page
	h[21], h[22], h[23] = 64, 32, 32
	binary.BigEndian.PutUint32(h[24:], 1) // file change counter
	binary.BigEndian.PutUint32(h[28:], uint32(len(w.pages)))
	binary.BigEndian.PutUint32(h[40:], 1) // schema cookie
	binary.BigEndian.PutUint32(h[44:], 4) // schema format
	binary.BigEndian.PutUint32(h[56:], 1) // UTF-8
	binary.BigEndian.PutUint32(h[92:], 1) // version-valid-for = change counter
	binary.BigEndian.PutUint32(h[96:], sqliteVersion)
}

// fits reports whether cells fit a page whose b-tree header is at off.
func fits(off, hdr int, cells [][]byte) bool {
	n := off + hdr
	for _, c := range cells {
		n += 2 + len(c)
	}
	return n <= pageSize
}

// writePage lays out a b-tree page: header at off, cell pointers in cell
// order, cell contents packed from the end of the page.
func writePage(pg []byte, off int, typ byte, cells [][]byte, right uint32) {
	hdr := leafHeader
	if typ == pageIndexInterior || typ == pageTableInterior {
		hdr = interiorHeader
		binary.BigEndian.PutUint32(pg[off+8:], right)
	}
	pg[off] = typ
	binary.BigEndian.PutUint16(pg[off+3:], uint16(len(cells)))
	end := pageSize
	for i, c := range cells {
		end -= len(c)
		copy(pg[end:], c)
		binary.BigEndian.PutUint16(pg[off+hdr+2*i:], uint16(end))
	}
	binary.BigEndian.PutUint16(pg[off+5:], uint16(end%65536))
}

type tableRow struct {
	rowid   int64
	payload []byte
}

func tableCell(rowid int64, payload []byte) []byte {
	c := putVarint(nil, uint64(len(payload)))
	c = putVarint(c, uint64(rowid))
	return append(c, payload...)
}

// table writes a table b-tree of rows (sorted by rowid) and returns its
// root page.
func (w *writer) table(rows []tableRow) (uint32, error) {
	type child struct {
		page   uint32
		maxKey int64
	}
	var level []child
	var cells [][]byte
	var last int64
	flush := func() {
		n := w.alloc()
		writePage(w.page(n), 0, pageTableLeaf, cells, 0)
		level = append(level, child{n, last})
		cells = nil
	}
	for _, r := range rows {
		if len(r.payload) > maxTablePayload {
			return 0, fmt.Errorf("nix database: a row of %d bytes needs overflow pages, which releng does not write", len(r.payload))
		}
		c := tableCell(r.rowid, r.payload)
		if len(cells) > 0 && !fits(0, leafHeader, append(cells, c)) {
			flush()
		}
		cells = append(cells, c)
		last = r.rowid
	}
	if len(cells) > 0 || len(level) == 0 {
		flush()
	}
	// Interior levels: every child but the last of a page gets a cell
	// (its page, its largest rowid); the last is the right pointer.
	const perPage = (pageSize - interiorHeader) / (2 + 4 + 9)
	for len(level) > 1 {
		pages := (len(level) + perPage - 1) / perPage
		var next []child
		for p := 0; p < pages; p++ {
			lo, hi := p*len(level)/pages, (p+1)*len(level)/pages
			kids := level[lo:hi]
			var cs [][]byte
			for _, k := range kids[:len(kids)-1] {
				c := binary.BigEndian.AppendUint32(nil, k.page)
				cs = append(cs, putVarint(c, uint64(k.maxKey)))
			}
			n := w.alloc()
			writePage(w.page(n), 0, pageTableInterior, cs, kids[len(kids)-1].page)
			next = append(next, child{n, kids[len(kids)-1].maxKey})
		}
		level = next
	}
	return level[0].page, nil
}

// indexKey is an index entry: an optional text column, then integers (the
// last one the rowid). Entries compare as SQLite compares records with
// BINARY collation.
type indexKey struct {
	text string
	ints []int64
}

func (k indexKey) less(o indexKey) bool {
	if k.text != o.text {
		return k.text < o.text
	}
	for i := range k.ints {
		if k.ints[i] != o.ints[i] {
			return k.ints[i] < o.ints[i]
		}
	}
	return false
}

func (k indexKey) payload() ([]byte, error) {
	var vals []any
	if k.text != "" {
		vals = append(vals, k.text)
	}
	for _, i := range k.ints {
		vals = append(vals, i)
	}
	return record(vals...)
}

// index writes an index b-tree and returns its root page. Unlike a table,
// an index keeps each entry once: the separators of interior pages are
// entries themselves.
func (w *writer) index(keys []indexKey) (uint32, error) {
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	payloads := make([][]byte, len(keys))
	for i, k := range keys {
		p, err := k.payload()
		if err != nil {
			return 0, err
		}
		if len(p) > maxIndexPayload {
			return 0, fmt.Errorf("nix database: an index entry of %d bytes needs overflow pages, which releng does not write (store path %q too long?)", len(p), k.text)
		}
		payloads[i] = putVarint(nil, uint64(len(p)))
		payloads[i] = append(payloads[i], p...)
	}
	// Leaves, with one entry promoted between consecutive leaves.
	var children []uint32
	var seps [][]byte
	for i := 0; i < len(payloads) || len(children) == 0; {
		j := i
		for j < len(payloads) && fits(0, leafHeader, payloads[i:j+1]) {
			j++
		}
		if j == len(payloads)-1 { // the separator would leave an empty leaf
			j--
		}
		n := w.alloc()
		writePage(w.page(n), 0, pageIndexLeaf, payloads[i:j], 0)
		children = append(children, n)
		if j < len(payloads) {
			seps = append(seps, payloads[j])
		}
		i = j + 1
		if len(payloads) == 0 {
			break
		}
	}
	// Interior levels: cells (child, separator), the last child as the
	// right pointer; a separator that does not fit goes up a level.
	for len(children) > 1 {
		var nextChildren []uint32
		var nextSeps [][]byte
		cell := func(k int) []byte {
			c := binary.BigEndian.AppendUint32(nil, children[k])
			return append(c, seps[k]...)
		}
		for i := 0; i < len(children); {
			var cs [][]byte
			j := i
			for j < len(children)-1 && fits(0, interiorHeader, append(cs, cell(j))) {
				cs = append(cs, cell(j))
				j++
			}
			if j < len(children)-1 && j+1 == len(children)-1 { // next page would have no cell
				cs = cs[:len(cs)-1]
				j--
			}
			n := w.alloc()
			writePage(w.page(n), 0, pageIndexInterior, cs, children[j])
			nextChildren = append(nextChildren, n)
			if j < len(children)-1 {
				nextSeps = append(nextSeps, seps[j])
			}
			i = j + 1
		}
		children, seps = nextChildren, nextSeps
	}
	return children[0], nil
}

// record encodes values (nil, int64, string) in SQLite's record format.
func record(vals ...any) ([]byte, error) {
	var types, body []byte
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			types = putVarint(types, 0)
		case int64:
			switch {
			case v == 0:
				types = putVarint(types, 8)
			case v == 1:
				types = putVarint(types, 9)
			case v >= -1<<7 && v < 1<<7:
				types = putVarint(types, 1)
				body = append(body, byte(v))
			case v >= -1<<15 && v < 1<<15:
				types = putVarint(types, 2)
				body = binary.BigEndian.AppendUint16(body, uint16(v))
			case v >= -1<<23 && v < 1<<23:
				types = putVarint(types, 3)
				body = append(body, byte(v>>16), byte(v>>8), byte(v))
			case v >= -1<<31 && v < 1<<31:
				types = putVarint(types, 4)
				body = binary.BigEndian.AppendUint32(body, uint32(v))
			case v >= -1<<47 && v < 1<<47:
				types = putVarint(types, 5)
				body = append(body, byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
			default:
				types = putVarint(types, 6)
				body = binary.BigEndian.AppendUint64(body, uint64(v))
			}
		case string:
			types = putVarint(types, uint64(2*len(v)+13))
			body = append(body, v...)
		default:
			return nil, fmt.Errorf("nix database: cannot store a %T", v)
		}
	}
	// The header size counts its own varint.
	hs := len(types) + 1
	for len(putVarint(nil, uint64(hs)))+len(types) != hs {
		hs = len(putVarint(nil, uint64(hs))) + len(types)
	}
	out := putVarint(nil, uint64(hs))
	out = append(out, types...)
	return append(out, body...), nil
}

// putVarint appends v in SQLite's big-endian variable-length encoding
// (1 to 9 bytes; the ninth byte holds 8 bits).
func putVarint(b []byte, v uint64) []byte {
	if v > 0x00ffffffffffffff {
		var buf [9]byte
		buf[8] = byte(v)
		v >>= 8
		for i := 7; i >= 0; i-- {
			buf[i] = byte(v&0x7f) | 0x80
			v >>= 7
		}
		return append(b, buf[:]...)
	}
	var buf [8]byte
	n := 0
	for {
		buf[n] = byte(v&0x7f) | 0x80
		n++
		v >>= 7
		if v == 0 {
			break
		}
	}
	buf[0] &^= 0x80
	for i := n - 1; i >= 0; i-- {
		b = append(b, buf[i])
	}
	return b
}
