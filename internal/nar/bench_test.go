package nar

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// BenchmarkDumpGoroot measures what a cache push does per path: NAR,
// sha256 and listing in one pass, of the Go toolchain (~270 MB, 16k
// files; warm page cache after the first iteration).
func BenchmarkDumpGoroot(b *testing.B) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("go env GOROOT:", err)
	}
	goroot := strings.TrimSpace(string(out))
	res, err := DumpPath(nil, goroot, DumpOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(res.Size))
	b.ResetTimer()
	for b.Loop() {
		if _, err := DumpPath(nil, goroot, DumpOptions{Hash: true, Listing: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDumpTree is the same on the small hand-made tree (mostly
// per-entry overhead).
func BenchmarkDumpTree(b *testing.B) {
	tree := handMadePaths(b)["tree"]
	res, err := DumpPath(nil, tree, DumpOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(res.Size))
	for b.Loop() {
		if _, err := DumpPath(nil, tree, DumpOptions{Hash: true, Listing: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReader reads back a NAR of the hand-made tree.
func BenchmarkReader(b *testing.B) {
	data := narOf(b, handMadePaths(b)["tree"])
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadListing(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
