package nar

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReaderRoundTrip reads real NARs (from nix-store --dump when Nix is
// installed, else ours, which the Nix tests show are the same) and checks
// that re-encoding what the Reader returned gives the same bytes.
func TestReaderRoundTrip(t *testing.T) {
	hand := handMadePaths(t)
	for _, name := range []string{"tree", "file", "exec-file", "empty", "link"} {
		t.Run(name, func(t *testing.T) {
			data := narOf(t, hand[name])
			got, hs, err := readAll(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("re-encoded NAR differs (%d vs %d bytes)", len(got), len(data))
			}
			if hs[0].Path != "/" {
				t.Errorf("first path %q, want /", hs[0].Path)
			}
			if name == "tree" {
				want := 1 // the root
				for range handTree {
					want++
				}
				if len(hs) != want {
					t.Errorf("%d entries, want %d", len(hs), want)
				}
			}
		})
	}
}

// TestReaderHeaders checks paths, types and offsets on a small NAR.
func TestReaderHeaders(t *testing.T) {
	data := tNAR(tDir(
		tEntry("a", tExec("#!")),
		tEntry("d", tDir(tEntry("l", tLink("../a")), tEntry("z", tFile("")))),
		tEntry("e", tFile("hello")),
	))
	nr := NewReader(bytes.NewReader(data))
	var got []string
	for {
		h, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := h.Path + " " + h.Type.String()
		switch h.Type {
		case TypeRegular:
			c, _ := io.ReadAll(nr)
			if !bytes.Equal(data[h.Offset:h.Offset+h.Size], c) {
				t.Errorf("%s: offset %d does not point at contents", h.Path, h.Offset)
			}
			if h.Executable {
				s += " x"
			}
			s += " " + string(c)
		case TypeSymlink:
			s += " " + h.Target
		}
		got = append(got, s)
	}
	want := []string{"/ directory", "/a regular x #!", "/d directory", "/d/l symlink ../a", "/d/z regular ", "/e regular hello"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Skipping contents without reading them works too.
	nr = NewReader(bytes.NewReader(data))
	n := 0
	for {
		_, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(want) {
		t.Errorf("%d entries when skipping contents, want %d", n, len(want))
	}
}

func deepNAR(levels int) []byte {
	node := tFile("leaf")
	for i := 0; i < levels; i++ {
		node = tDir(tEntry("d", node))
	}
	return tNAR(node)
}

// hostileNARs are malformed or malicious archives and what the error must
// say. Each must fail without panicking, allocating what a length claims,
// or (for Restore) creating anything outside the target.
var hostileNARs = []struct {
	name    string
	data    []byte
	wantErr string
}{
	{"empty input", nil, "truncated"},
	{"wrong magic", toks("nix-archive-2", tFile("x")), `expected "nix-archive-1"`},
	{"huge magic length", toks(u64(1<<62), raw("nix-arch")), "string of 4611686018427387904 bytes"},
	{"max length", toks(u64(1<<64 - 1)), "string of 18446744073709551615 bytes"},
	{"bad padding after magic", toks(u64(13), raw("nix-archive-1\x00\x01\x00")), "non-zero padding"},
	{"bad padding after contents", toks("nix-archive-1", "(", "type", "regular", "contents", u64(3), raw("abc\x00\x00\x00\x00\x07"), ")"), "non-zero padding"},
	{"bad padding in name", toks("nix-archive-1", "(", "type", "directory", "entry", "(", "name", u64(1), raw("a\x00\x00\x00\x00\x00\x00\x01")), "non-zero padding"},
	{"huge contents", toks("nix-archive-1", "(", "type", "regular", "contents", u64(1<<63)), "too large"},
	{"contents longer than input", toks("nix-archive-1", "(", "type", "regular", "contents", u64(1<<40), raw("abc")), "truncated"},
	{"name too long", tNAR(tDir(tEntry(strings.Repeat("n", 256), tFile("")))), "string of 256 bytes, at most 255"},
	{"huge name length", toks("nix-archive-1", "(", "type", "directory", "entry", "(", "name", u64(1<<60)), "string of 1152921504606846976 bytes, at most 255"},
	{"target too long", tNAR(tLink(strings.Repeat("t", 4096))), "string of 4096 bytes, at most 4095"},
	{"empty target", tNAR(tLink("")), "empty symlink target"},
	{"NUL in target", tNAR(tLink("a\x00b")), "contains a NUL byte"},
	{"empty name", tNAR(tDir(tEntry("", tFile("")))), "empty entry name"},
	{"dot", tNAR(tDir(tEntry(".", tFile("")))), `entry name "." is not allowed`},
	{"dotdot", tNAR(tDir(tEntry("..", tFile("pwned")))), `entry name ".." is not allowed`},
	{"slash", tNAR(tDir(tEntry("a/b", tFile("")))), `contains '/'`},
	{"escape with slashes", tNAR(tDir(tEntry("../../etc", tDir(tEntry("passwd", tFile("x")))))), `contains '/'`},
	{"NUL in name", tNAR(tDir(tEntry("a\x00b", tFile("")))), "contains a NUL byte"},
	{"case hack", tNAR(tDir(tEntry("a~nix~case~hack~1", tFile("")))), "~nix~case~hack~"},
	{"unsorted", tNAR(tDir(tEntry("b", tFile("")), tEntry("a", tFile("")))), `entry "a" is not sorted after "b"`},
	{"duplicate", tNAR(tDir(tEntry("a", tFile("")), tEntry("a", tFile("")))), `duplicate entry "a"`},
	{"symlink then directory of the same name", tNAR(tDir(
		tEntry("evil", tLink("/tmp")),
		tEntry("evil", tDir(tEntry("pwned", tFile("x")))))), `duplicate entry "evil"`},
	{"64 levels", deepNAR(64), "64 levels deep (limit 63)"},
	{"unknown type", toks("nix-archive-1", "(", "type", "fifo", ")"), `unknown node type "fifo"`},
	{"executable with a value", toks("nix-archive-1", "(", "type", "regular", "executable", "yes", "contents", "", ")"), `expected ""`},
	{"contents before executable", toks("nix-archive-1", "(", "type", "regular", "contents", "x", "executable", "", ")"), `expected ")", got "executable"`},
	{"missing node", toks("nix-archive-1", "(", "type", "directory", "entry", "(", "name", "a", tFile("")), `expected "node", got "("`},
	{"garbage in directory", toks("nix-archive-1", "(", "type", "directory", "garbage"), `expected "entry" or ")"`},
	{"missing close", toks("nix-archive-1", tFile("x")[:5]), "truncated"},
	{"entry not closed", toks("nix-archive-1", "(", "type", "directory", "entry", "(", "name", "a", "node", tFile("x"), "entry"), `expected ")", got "entry"`},
}

func TestReaderHostile(t *testing.T) {
	for _, tc := range hostileNARs {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(tc.data)
			if err == nil {
				t.Fatal("read without error")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FormatError", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
		})
	}
	t.Run("63 levels is fine", func(t *testing.T) {
		if _, _, err := readAll(deepNAR(63)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReaderTruncated cuts a valid NAR at every length: each prefix must
// fail with a truncation error, and errors are sticky.
func TestReaderTruncated(t *testing.T) {
	data := tNAR(tDir(
		tEntry("a", tExec("#!/bin/sh")),
		tEntry("d", tDir(tEntry("l", tLink("../a")))),
		tEntry("e", tFile("hello, world")),
	))
	for n := 0; n < len(data); n++ {
		_, _, err := readAll(data[:n])
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix of %d bytes: error %v, want truncation", n, err)
		}
	}
	nr := NewReader(bytes.NewReader(data[:40]))
	_, err1 := nr.Next()
	_, err2 := nr.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("errors not sticky: %v then %v", err1, err2)
	}
}

// TestRestoreRoundTrip unpacks NARs and dumps the result again.
func TestRestoreRoundTrip(t *testing.T) {
	hand := handMadePaths(t)
	for _, name := range []string{"tree", "file", "exec-file", "empty", "link"} {
		t.Run(name, func(t *testing.T) {
			data := narOf(t, hand[name])
			dst := filepath.Join(t.TempDir(), "out")
			if err := Restore(bytes.NewReader(data), dst); err != nil {
				t.Fatal(err)
			}
			if again := narOf(t, dst); !bytes.Equal(again, data) {
				t.Fatalf("NAR of the restored %s differs", name)
			}
		})
	}
}

func TestRestoreRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	err := Restore(bytes.NewReader(tNAR(tFile("x"))), dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Restore into an existing directory: %v", err)
	}
}

// TestRestoreHostile checks that a hostile NAR creates nothing: not in
// the target (removed on error) and not next to it.
func TestRestoreHostile(t *testing.T) {
	for _, tc := range hostileNARs {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			if err := Restore(bytes.NewReader(tc.data), dst); err == nil {
				t.Fatal("Restore succeeded")
			}
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("Restore left %d entries behind, first %q", len(entries), entries[0].Name())
			}
		})
	}
}

// TestRestoreSymlinkNotFollowed restores a symlink pointing out of the
// target and checks nothing was written through it.
func TestRestoreSymlinkNotFollowed(t *testing.T) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	data := tNAR(tDir(tEntry("a", tLink(outside)), tEntry("b", tLink("../outside")), tEntry("c", tFile("x"))))
	dst := filepath.Join(parent, "out")
	if err := Restore(bytes.NewReader(data), dst); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "a")); err != nil || target != outside {
		t.Errorf("symlink a: %q %v", target, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was written outside the target")
	}
}
