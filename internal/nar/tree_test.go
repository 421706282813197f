package nar

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fsEntry describes one thing makeTree creates.
type fsEntry struct {
	path    string // relative, "/"-separated
	kind    byte   // 'f' file, 'd' directory, 'l' symlink
	mode    os.FileMode
	data    string // file contents or link target
	randLen int    // file of that many pseudo-random bytes instead of data
}

// handTree is a tree that exercises every corner of the format that a
// Linux file system can hold.
var handTree = []fsEntry{
	{path: "A", kind: 'f', mode: 0o644, data: "upper\n"},
	{path: "a", kind: 'f', mode: 0o644, data: "lower\n"},
	{path: "B", kind: 'd'},
	{path: "B/x", kind: 'f', mode: 0o644, data: "x"},
	{path: "b", kind: 'f', mode: 0o644, data: "bb"},
	{path: "Zeta", kind: 'f', mode: 0o644, data: "zeta"},
	{path: "_under", kind: 'f', mode: 0o644, data: "_"},
	{path: "-dash", kind: 'f', mode: 0o644, data: "-"},
	{path: ".hidden", kind: 'f', mode: 0o644, data: "hidden"},
	{path: "~tilde", kind: 'f', mode: 0o644, data: "~"},
	{path: "bin", kind: 'd'},
	{path: "bin/tool", kind: 'f', mode: 0o755, data: "#!/bin/sh\necho hi\n"},
	{path: "bin/user-exec-only", kind: 'f', mode: 0o744, data: "u+x"},
	{path: "bin/group-exec-only", kind: 'f', mode: 0o654, data: "g+x"},
	{path: "bin/empty-exec", kind: 'f', mode: 0o755},
	{path: "sizes", kind: 'd'},
	{path: "sizes/0", kind: 'f', mode: 0o644},
	{path: "sizes/1", kind: 'f', mode: 0o644, data: "1"},
	{path: "sizes/7", kind: 'f', mode: 0o644, data: "1234567"},
	{path: "sizes/8", kind: 'f', mode: 0o644, data: "12345678"},
	{path: "sizes/9", kind: 'f', mode: 0o644, data: "123456789"},
	{path: "sizes/big", kind: 'f', mode: 0o644, randLen: 1<<20 + 3},
	{path: "sizes/medium", kind: 'f', mode: 0o644, randLen: 70001},
	{path: "emptydir", kind: 'd'},
	{path: "nested", kind: 'd'},
	{path: "nested/a", kind: 'd'},
	{path: "nested/a/b", kind: 'd'},
	{path: "nested/a/b/c", kind: 'd'},
	{path: "nested/a/b/c/leaf", kind: 'f', mode: 0o644, data: "leaf\n"},
	{path: "nested/a/b/empty", kind: 'd'},
	{path: "links", kind: 'd'},
	{path: "links/rel", kind: 'l', data: "../sizes/1"},
	{path: "links/abs", kind: 'l', data: "/nix/store/00000000000000000000000000000000-nowhere/bin/sh"},
	{path: "links/dangling", kind: 'l', data: "nowhere"},
	{path: "links/dir", kind: 'l', data: "../nested"},
	{path: "links/dot", kind: 'l', data: "."},
	{path: "links/long", kind: 'l', data: strings.Repeat("x/", 1000) + "end"},
	{path: "names", kind: 'd'},
	{path: "names/space name", kind: 'f', mode: 0o644, data: "s"},
	{path: "names/unicode-é", kind: 'f', mode: 0o644, data: "e"},
	{path: "names/名前", kind: 'f', mode: 0o644, data: "n"},
	{path: "names/quote\"back\\slash", kind: 'f', mode: 0o644, data: "q"},
	{path: "names/ctrl\x01\x1f\x7f", kind: 'f', mode: 0o644, data: "c"},
	{path: "names/tab\tnl\ncr\rbs\bff\f", kind: 'f', mode: 0o644, data: "w"},
	{path: "names/slash-in-target", kind: 'l', data: "a/../b//c/"},
	{path: "names/" + strings.Repeat("n", 255), kind: 'f', mode: 0o644, data: "255"},
}

// makeTree creates entries under dir (which must exist).
func makeTree(dir string, entries []fsEntry) error {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		var err error
		switch e.kind {
		case 'd':
			err = os.Mkdir(p, 0o755)
		case 'l':
			err = os.Symlink(e.data, p)
		case 'f':
			data := []byte(e.data)
			if e.randLen > 0 {
				data = make([]byte, e.randLen)
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
			}
			if err = os.WriteFile(p, data, 0o600); err == nil {
				err = os.Chmod(p, e.mode)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tempDirs are removed by TestMain.
var tempDirs []string

// handMadeTrees creates, once per test binary run, the hand-made tree and
// the single-file and symlink roots, and returns their paths by name.
var handMade = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "releng-nar-tree-")
	if err != nil {
		return nil, err
	}
	tempDirs = append(tempDirs, dir)
	paths := map[string]string{
		"tree":      filepath.Join(dir, "tree"),
		"file":      filepath.Join(dir, "file"),
		"exec-file": filepath.Join(dir, "exec-file"),
		"empty":     filepath.Join(dir, "empty"),
		"link":      filepath.Join(dir, "link"),
	}
	if err := os.Mkdir(paths["tree"], 0o755); err != nil {
		return nil, err
	}
	if err := makeTree(paths["tree"], handTree); err != nil {
		return nil, err
	}
	if err := os.WriteFile(paths["file"], []byte("just a file\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(paths["exec-file"], []byte("#!/bin/sh\n"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(paths["empty"], nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Symlink("target/of/root", paths["link"]); err != nil {
		return nil, err
	}
	return paths, nil
})

func handMadePaths(t testing.TB) map[string]string {
	t.Helper()
	p, err := handMade()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// storePaths caches `nix-store --add` results for the whole test run.
var (
	storeMu    sync.Mutex
	storePaths = map[string]string{}
)

// addToStore adds a path to the Nix store (once per run) and returns the
// store path.
func addToStore(t testing.TB, n *nixEnv, path string) string {
	t.Helper()
	storeMu.Lock()
	defer storeMu.Unlock()
	if sp, ok := storePaths[path]; ok {
		return sp
	}
	sp := strings.TrimSpace(string(n.run(t, "nix-store", "--add", path)))
	storePaths[path] = sp
	return sp
}

// pathInfo is what the tests need from `nix path-info --json`.
type pathInfo struct {
	NarHash [32]byte
	NarSize uint64
}

func nixPathInfo(t testing.TB, n *nixEnv, storePath string) pathInfo {
	t.Helper()
	out := n.run(t, "nix", "path-info", "--json", storePath)
	var infos []struct {
		Path    string `json:"path"`
		NarHash string `json:"narHash"`
		NarSize uint64 `json:"narSize"`
	}
	if err := json.Unmarshal(out, &infos); err != nil || len(infos) != 1 {
		t.Fatalf("nix path-info --json %s: %v\n%s", storePath, err, out)
	}
	b64, ok := strings.CutPrefix(infos[0].NarHash, "sha256-")
	if !ok {
		t.Fatalf("unexpected narHash %q", infos[0].NarHash)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		t.Fatalf("bad narHash %q: %v", infos[0].NarHash, err)
	}
	var pi pathInfo
	copy(pi.NarHash[:], raw)
	pi.NarSize = infos[0].NarSize
	return pi
}

// compareWriter checks that what is written to it equals what is read
// from want, and reports the first difference.
type compareWriter struct {
	want io.Reader
	off  int64
	buf  []byte
	diff string
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.diff != "" {
		return len(p), nil
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	w := c.buf[:len(p)]
	n, err := io.ReadFull(c.want, w)
	for i := 0; i < n; i++ {
		if w[i] != p[i] {
			c.diff = diffAt(c.off+int64(i), w[i:n], p[i:])
			return len(p), nil
		}
	}
	if err != nil {
		c.diff = "nix's NAR ends at byte " + itoa(c.off+int64(n)) + ", ours goes on"
	}
	c.off += int64(len(p))
	return len(p), nil
}

func (c *compareWriter) finish() string {
	if c.diff != "" {
		return c.diff
	}
	extra, _ := io.Copy(io.Discard, c.want)
	if extra > 0 {
		return "our NAR ends at byte " + itoa(c.off) + ", nix's has " + itoa(extra) + " more bytes"
	}
	return ""
}

func diffAt(off int64, want, got []byte) string {
	cut := func(b []byte) []byte {
		if len(b) > 32 {
			return b[:32]
		}
		return b
	}
	return "first difference at byte " + itoa(off) + ":\n nix:  " + quoteBytes(cut(want)) + "\n ours: " + quoteBytes(cut(got))
}

func quoteBytes(b []byte) string { return strings.TrimSpace(string(mustJSON(string(b)))) }

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func itoa(n int64) string { return strings.TrimSpace(string(mustJSON(n))) }

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

// narOf dumps path with our implementation into memory (small trees only).
func narOf(t testing.TB, path string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Dump(&b, path); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
