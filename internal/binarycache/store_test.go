package binarycache

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
)

// testStore is a directory tree shaped like a Nix store, with a closure
// file describing it, for tests that need no Nix.
type testStore struct {
	Dir   string // the store directory
	File  string // the closure JSON file
	Infos []nixstore.PathInfo
}

// pathSpec describes a store path of a testStore: files (name → size of
// pseudo-random, compressible content) and references (indexes of earlier
// paths).
type pathSpec struct {
	name   string
	files  map[string]int
	random map[string]int // files of incompressible bytes
	refs   []int
}

const nixbase32Chars = "0123456789abcdfghijklmnpqrsvwxyz"

func makeTestStore(t testing.TB, seed uint64, specs []pathSpec) *testStore {
	t.Helper()
	root := t.TempDir()
	s := &testStore{Dir: filepath.Join(root, "nix", "store"), File: filepath.Join(root, "closure.json")}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var paths []nixstore.StorePath
	for _, spec := range specs {
		hash := make([]byte, nixstore.HashLen)
		for i := range hash {
			hash[i] = nixbase32Chars[rng.IntN(32)]
		}
		sp, err := nixstore.ParseBaseName(s.Dir, string(hash)+"-"+spec.name)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, sp)
		if err := os.MkdirAll(sp.String(), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, size := range spec.files {
			f := filepath.Join(sp.String(), name)
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, testContent(rng, size), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, size := range spec.random {
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(filepath.Join(sp.String(), name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var refs []string
		for _, r := range spec.refs {
			refs = append(refs, paths[r].String())
		}
		if err := os.WriteFile(filepath.Join(sp.String(), "refs"), []byte(fmt.Sprint(refs)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("refs", filepath.Join(sp.String(), "link")); err != nil {
			t.Fatal(err)
		}
	}
	s.writeClosure(t, specs, paths)
	return s
}

// testContent is size bytes of text-like, compressible data.
func testContent(rng *rand.Rand, size int) []byte {
	words := []string{"store ", "path ", "nix ", "release ", "cache ", "binary ", "closure ", "\n", "lix ", "zstd "}
	b := make([]byte, 0, size+16)
	for len(b) < size {
		if rng.IntN(8) == 0 {
			b = append(b, byte(rng.IntN(256)))
		} else {
			b = append(b, words[rng.IntN(len(words))]...)
		}
	}
	return b[:size]
}

// writeClosure computes every path's NAR hash and size and writes the
// closure file (the array shape of nix path-info --json).
func (s *testStore) writeClosure(t testing.TB, specs []pathSpec, paths []nixstore.StorePath) {
	t.Helper()
	var out []map[string]any
	s.Infos = nil
	for i, sp := range paths {
		res, err := nar.DumpPath(nil, sp.String(), nar.DumpOptions{Hash: true})
		if err != nil {
			t.Fatal(err)
		}
		refs := []string{}
		for _, r := range specs[i].refs {
			refs = append(refs, paths[r].String())
		}
		out = append(out, map[string]any{
			"path": sp.String(), "narHash": nixstore.Hash(res.SHA256).String(), "narSize": res.Size,
			"references": refs, "signatures": []string{},
		})
	}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.File, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Infos, err = nixstore.LoadClosureFile(s.File, s.Dir)
	if err != nil {
		t.Fatal(err)
	}
}

// chainSpecs is n paths, each referring to the one before and to the
// first, with files of the given sizes.
func chainSpecs(n int, sizes ...int) []pathSpec {
	var specs []pathSpec
	for i := range n {
		files := map[string]int{}
		for j, sz := range sizes {
			files[fmt.Sprintf("share/f%d", j)] = sz + i
		}
		var refs []int
		if i > 0 {
			refs = append(refs, i-1)
		}
		if i > 1 {
			refs = append(refs, 0)
		}
		specs = append(specs, pathSpec{name: fmt.Sprintf("pkg-%d", i), files: files, refs: refs})
	}
	return specs
}
