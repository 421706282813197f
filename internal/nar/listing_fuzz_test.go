package nar

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/releng-project/releng/internal/testenv"
)

// releng writes `.ls` listings but never parses one (verification compares
// bytes), so the reader behind them is ReadListing over a NAR.

// lsNode is a listing node as decoded from JSON.
type lsNode struct {
	Type       string            `json:"type"`
	Size       uint64            `json:"size"`
	Executable bool              `json:"executable"`
	NarOffset  uint64            `json:"narOffset"`
	Target     string            `json:"target"`
	Entries    map[string]lsNode `json:"entries"`
}

// readerSeeds returns the NARs of FuzzReader's corpus (real NARs written
// by nix-store --dump, and what fuzzing the Reader found).
func readerSeeds(f *testing.F) [][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReader", "*"))
	var out [][]byte
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		_, lit, ok := strings.Cut(strings.TrimSpace(string(data)), "\n[]byte(")
		if !ok {
			continue
		}
		if b, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
			out = append(out, []byte(b))
		}
	}
	return out
}

// FuzzReadListing feeds arbitrary bytes to ReadListing, which builds the
// `.ls` listing of a NAR. It fails exactly when the Reader does, with a
// *FormatError. The listing it builds has the NAR's entries in NAR order,
// and each file's narOffset and size point at that file's contents in the
// NAR. Marshal refuses only names and targets that are not UTF-8; what
// it writes follows SPEC §9 and decodes to the same tree. Memory stays a
// small multiple of the input, whatever lengths the NAR declares.
func FuzzReadListing(f *testing.F) {
	for _, s := range readerSeeds(f) {
		f.Add(s)
	}
	f.Add(tNAR(tDir(tEntry("a", tDir(tEntry("b", tExec("x")))), tEntry("c", tLink("a/b")), tEntry("d", tFile("")))))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ls *Listing
		var err error
		testenv.CheckAllocBytes(t, "ReadListing", 64*uint64(len(data))+1<<20, func() {
			ls, err = ReadListing(bytes.NewReader(data))
		})
		type item struct {
			h        *Header
			contents []byte
		}
		var want []item
		nr := NewReader(bytes.NewReader(data))
		var rerr error
		for {
			h, err := nr.Next()
			if err != nil {
				if err != io.EOF {
					rerr = err
				}
				break
			}
			c, err := io.ReadAll(nr)
			if err != nil {
				rerr = err
				break
			}
			want = append(want, item{h, c})
		}
		if (err == nil) != (rerr == nil) {
			t.Fatalf("ReadListing says %v, the Reader %v", err, rerr)
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("the error is not a *FormatError: %v", err)
			}
			return
		}
		if ls.Root == nil {
			t.Fatal("no root")
		}
		// The listing in NAR order is the Reader's entries.
		i := 0
		utf8OK := true
		var walk func(n *Node, path string)
		walk = func(n *Node, path string) {
			if i >= len(want) {
				t.Fatalf("%s: the listing has more entries than the NAR", path)
			}
			h, c := want[i].h, want[i].contents
			i++
			if h.Path != path || h.Type != n.Type || h.Target != n.Target || h.Executable != n.Executable || h.Size != n.Size {
				t.Fatalf("listing node %s %+v, NAR entry %+v", path, n, h)
			}
			utf8OK = utf8OK && utf8.ValidString(n.Target)
			if n.Type == TypeRegular {
				if n.NarOffset == 0 || n.NarOffset+n.Size > uint64(len(data)) || !bytes.Equal(data[n.NarOffset:n.NarOffset+n.Size], c) {
					t.Fatalf("%s: narOffset %d and size %d do not point at its contents", path, n.NarOffset, n.Size)
				}
			}
			for _, e := range n.Entries {
				utf8OK = utf8OK && utf8.ValidString(e.Name)
				walk(e.Node, strings.TrimSuffix(path, "/")+"/"+e.Name)
			}
		}
		walk(ls.Root, "/")
		if i != len(want) {
			t.Fatalf("the listing has %d entries, the NAR %d", i, len(want))
		}
		out, err := ls.Marshal()
		if (err == nil) != utf8OK {
			t.Fatalf("Marshal: %v, with names and targets valid UTF-8: %v", err, utf8OK)
		}
		if err != nil {
			return
		}
		checkListingFormat(t, out)
		var doc struct {
			Root    lsNode `json:"root"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("the listing does not decode: %v", err)
		}
		var same func(n *Node, d lsNode) bool
		same = func(n *Node, d lsNode) bool {
			if d.Type != n.Type.String() || d.Size != n.Size || d.Executable != n.Executable || d.NarOffset != n.NarOffset || d.Target != n.Target || len(d.Entries) != len(n.Entries) {
				return false
			}
			for _, e := range n.Entries {
				if de, ok := d.Entries[e.Name]; !ok || !same(e.Node, de) {
					return false
				}
			}
			return true
		}
		if doc.Version != 1 || !same(ls.Root, doc.Root) {
			t.Fatalf("the listing decodes to another tree:\n%s", out)
		}
	})
}
