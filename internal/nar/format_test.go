package nar

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"testing"
)

// toks builds raw NAR bytes: a string is a token (length, bytes, zero
// padding), a u64 is a bare little-endian number, raw is copied as is.
type u64 uint64
type raw []byte

func toks(items ...any) []byte {
	var b bytes.Buffer
	for _, it := range items {
		switch v := it.(type) {
		case string:
			binary.Write(&b, binary.LittleEndian, uint64(len(v)))
			b.WriteString(v)
			b.Write(make([]byte, padding(uint64(len(v)))))
		case u64:
			binary.Write(&b, binary.LittleEndian, uint64(v))
		case raw:
			b.Write(v)
		case []any:
			b.Write(toks(v...))
		default:
			panic(fmt.Sprintf("toks: %T", it))
		}
	}
	return b.Bytes()
}

// Node builders for toks.
func tFile(contents string) []any {
	return []any{"(", "type", "regular", "contents", contents, ")"}
}
func tExec(contents string) []any {
	return []any{"(", "type", "regular", "executable", "", "contents", contents, ")"}
}
func tLink(target string) []any { return []any{"(", "type", "symlink", "target", target, ")"} }
func tDir(entries ...[]any) []any {
	out := []any{"(", "type", "directory"}
	for _, e := range entries {
		out = append(out, e...)
	}
	return append(out, ")")
}
func tEntry(name string, node []any) []any {
	return append(append([]any{"entry", "(", "name", name, "node"}, node...), ")")
}
func tNAR(node []any) []byte { return toks(append([]any{"nix-archive-1"}, node...)...) }

// encoder re-serialises the entries a Reader returns, so tests can check
// that reading loses nothing.
type encoder struct {
	b    bytes.Buffer
	open []string // open directories, innermost last
}

func (e *encoder) str(s string) { e.b.Write(toks(s)) }

func (e *encoder) closeDir() {
	p := e.open[len(e.open)-1]
	e.open = e.open[:len(e.open)-1]
	e.str(")")
	if p != "/" {
		e.str(")")
	}
}

func (e *encoder) add(h *Header, contents []byte) {
	if h.Path == "/" {
		e.str("nix-archive-1")
	} else {
		for len(e.open) > 0 && e.open[len(e.open)-1] != path.Dir(h.Path) {
			e.closeDir()
		}
		e.str("entry")
		e.str("(")
		e.str("name")
		e.str(path.Base(h.Path))
		e.str("node")
	}
	e.str("(")
	e.str("type")
	e.str(h.Type.String())
	switch h.Type {
	case TypeDirectory:
		e.open = append(e.open, h.Path)
		return
	case TypeRegular:
		if h.Executable {
			e.str("executable")
			e.str("")
		}
		e.str("contents")
		e.str(string(contents))
	case TypeSymlink:
		e.str("target")
		e.str(h.Target)
	}
	e.str(")")
	if h.Path != "/" {
		e.str(")")
	}
}

func (e *encoder) bytes() []byte {
	for len(e.open) > 0 {
		e.closeDir()
	}
	return e.b.Bytes()
}

// readAll reads a NAR with Reader and re-encodes it.
func readAll(data []byte) ([]byte, []*Header, error) {
	nr := NewReader(bytes.NewReader(data))
	var enc encoder
	var hs []*Header
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return enc.bytes(), hs, nil
		}
		if err != nil {
			return nil, hs, err
		}
		contents, err := io.ReadAll(nr)
		if err != nil {
			return nil, hs, err
		}
		if h.Type == TypeRegular && uint64(len(contents)) != h.Size {
			return nil, hs, fmt.Errorf("%s: read %d bytes, header says %d", h.Path, len(contents), h.Size)
		}
		hs = append(hs, h)
		enc.add(h, contents)
	}
}

// checkListingFormat checks the rules of SPEC §9 on an encoded listing.
func checkListingFormat(t *testing.T, ls []byte) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, ls); err != nil {
		t.Fatalf("listing is not JSON: %v", err)
	}
	if !bytes.Equal(compact.Bytes(), ls) {
		t.Errorf("listing is not compact")
	}
	dec := json.NewDecoder(bytes.NewReader(ls))
	dec.UseNumber()
	v, err := orderedValue(dec)
	if err != nil {
		t.Fatal(err)
	}
	top, ok := v.(ordered)
	if !ok || !slices.Equal(top.keys(), []string{"root", "version"}) || top.get("version") != json.Number("1") {
		t.Fatalf("top level is not {\"root\":…,\"version\":1}")
	}
	var check func(n ordered, where string)
	check = func(n ordered, where string) {
		keys := n.keys()
		if !slices.IsSorted(keys) {
			t.Errorf("%s: keys not sorted: %q", where, keys)
		}
		switch n.get("type") {
		case "regular":
			for _, k := range keys {
				switch k {
				case "type", "size", "narOffset":
				case "executable":
					if n.get(k) != true {
						t.Errorf("%s: executable written but not true", where)
					}
				default:
					t.Errorf("%s: unexpected key %q", where, k)
				}
			}
			if n.get("size") == nil || n.get("narOffset") == nil {
				t.Errorf("%s: size or narOffset missing", where)
			}
		case "symlink":
			if !slices.Equal(keys, []string{"target", "type"}) {
				t.Errorf("%s: keys %q", where, keys)
			}
		case "directory":
			if !slices.Equal(keys, []string{"entries", "type"}) {
				t.Errorf("%s: keys %q", where, keys)
			}
			entries := n.get("entries").(ordered)
			names := entries.keys()
			if !slices.IsSorted(names) {
				t.Errorf("%s: entries not sorted", where)
			}
			for _, kv := range entries {
				check(kv.v.(ordered), where+"/"+kv.k)
			}
		default:
			t.Errorf("%s: bad type %v", where, n.get("type"))
		}
	}
	check(top.get("root").(ordered), "")
}

type kv struct {
	k string
	v any
}
type ordered []kv

func (o ordered) keys() []string {
	var ks []string
	for _, p := range o {
		ks = append(ks, p.k)
	}
	return ks
}

func (o ordered) get(k string) any {
	for _, p := range o {
		if p.k == k {
			return p.v
		}
	}
	return nil
}

// orderedValue decodes one JSON value keeping object key order.
func orderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return tok, nil
	}
	var o ordered
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		v, err := orderedValue(dec)
		if err != nil {
			return nil, err
		}
		o = append(o, kv{k.(string), v})
	}
	_, err = dec.Token()
	return o, err
}
