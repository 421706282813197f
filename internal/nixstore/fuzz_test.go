package nixstore

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

// FuzzParseNarInfo feeds arbitrary bytes to ParseNarInfo, the reader of
// the narinfos a binary cache serves. An error names the narinfo; a
// narinfo it accepts has the fields verification relies on, and if it
// can be written again, what Marshal writes parses to the same narinfo
// and marshals to the same bytes (a fixed point). Memory stays a small
// multiple of the input.
//
// Seeds: the narinfos of testdata/narinfo (written by Nix and by
// releng's writer) and the corpus in testdata/fuzz/FuzzParseNarInfo.
func FuzzParseNarInfo(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "narinfo", "*.narinfo"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(bytes.Replace(data, []byte("\nDeriver: "), []byte("\nSystem: x86_64-linux\nDeriver: "), 1))
	}
	f.Add([]byte("StorePath: /nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-x\nURL: nar/x.nar\nNarHash: sha256:14k5vdz5jc9db4wqw666sydm6h0xzaic7r87g0ic1hs68w249ypr\nNarSize: 1\nDeriver: unknown-deriver\nCA: fixed:r:sha256:14k5vdz5jc9db4wqw666sydm6h0xzaic7r87g0ic1hs68w249ypr\n"))
	const source = "https://cache.example/0123.narinfo"
	f.Fuzz(func(t *testing.T, data []byte) {
		var ni *NarInfo
		var err error
		testenv.CheckAllocBytes(t, "ParseNarInfo", 64*uint64(len(data))+256<<10, func() {
			ni, err = ParseNarInfo(data, source, DefaultStoreDir)
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), source) {
				t.Fatalf("the error does not name the narinfo: %v", err)
			}
			return
		}
		if ni.StorePath.IsZero() || ni.URL == "" || ni.NarHash.IsZero() || ni.Compression == "" {
			t.Fatalf("accepted a narinfo without StorePath, URL, NarHash or Compression: %+v", ni)
		}
		for i := 1; i < len(ni.References); i++ {
			if ni.References[i-1].Base() >= ni.References[i].Base() {
				t.Fatalf("references not sorted and unique: %v", ni.References)
			}
		}
		out, err := ni.Marshal()
		if err != nil {
			return // e.g. no FileHash: readable, not writable
		}
		again, err := ParseNarInfo(out, "again", DefaultStoreDir)
		if err != nil {
			t.Fatalf("what Marshal wrote does not parse: %v\n%s", err, out)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not a fixed point (%v):\n%s\n%s", err, out, out2)
		}
		if again.StorePath != ni.StorePath || again.URL != ni.URL || again.NarHash != ni.NarHash ||
			again.NarSize != ni.NarSize || again.FileHash != ni.FileHash || again.FileSize != ni.FileSize ||
			again.Deriver != ni.Deriver || again.CA != ni.CA || again.Compression != ni.Compression ||
			!reflect.DeepEqual(again.References, ni.References) {
			t.Fatalf("round trip changed the narinfo:\n%+v\n%+v", ni, again)
		}
	})
}
