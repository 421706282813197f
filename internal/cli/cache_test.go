package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/nixstore"
)

// cacheStore makes a two-path store tree (b refers to a) and its closure
// file; it returns the store directory, the closure file and the paths.
func cacheStore(t *testing.T) (string, string, []string) {
	t.Helper()
	root := t.TempDir()
	storeDir := filepath.Join(root, "nix", "store")
	var paths []string
	var infos []map[string]any
	for i, base := range []string{"0123456789abcdfghijklmnpqrsvwxyz-a-1.0", "zyxwvsrqpnmlkjihgfdcba9876543210-b"} {
		p := filepath.Join(storeDir, base)
		if err := os.MkdirAll(filepath.Join(p, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "bin", "tool"), []byte(strings.Repeat("tool\n", 1000+i)), 0o755)
		refs := []string{}
		if i == 1 {
			refs = append(refs, paths[0])
			os.WriteFile(filepath.Join(p, "dep"), []byte(paths[0]), 0o644)
		}
		res, err := nar.DumpPath(nil, p, nar.DumpOptions{Hash: true})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		infos = append(infos, map[string]any{"path": p, "narHash": nixstore.Hash(res.SHA256).String(), "narSize": res.Size, "references": refs})
	}
	data, _ := json.Marshal(infos)
	file := filepath.Join(root, "closure.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return storeDir, file, paths
}

func narinfos(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.narinfo"))
	return m
}

func TestCachePushJSON(t *testing.T) {
	storeDir, file, paths := cacheStore(t)
	cache := filepath.Join(t.TempDir(), "cache")
	key := filepath.Join(t.TempDir(), "key.sec")
	if _, err := nixstore.GenerateKeyFile("cli-test-1", key); err != nil {
		t.Fatal(err)
	}
	args := []string{"--json", "cache", "push", "--to", "file://" + cache + "?write-nar-listing=true&secret-key=" + key, "--store-dir", storeDir, "--closure-file", file, "-j", "2", paths[1]}
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum struct {
		To          string
		Paths       int
		Pushed      int
		Skipped     int
		NarBytes    int64    `json:"nar_bytes"`
		BytesOut    int64    `json:"bytes_out"`
		Compression string   `json:"compression"`
		PushedPaths []string `json:"pushed_paths"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if sum.Paths != 2 || sum.Pushed != 2 || sum.Skipped != 0 || sum.NarBytes == 0 || sum.BytesOut == 0 || sum.Compression != "zstd" || len(sum.PushedPaths) != 2 || sum.To != "file://"+cache {
		t.Errorf("summary %+v", sum)
	}
	if len(narinfos(t, cache)) != 2 {
		t.Errorf("narinfos: %v", narinfos(t, cache))
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Errorf("progress bars on a non-terminal:\n%s", errOut)
	}
	// Second push, human output, paths on stdin.
	var stdout, stderr bytes.Buffer
	code = Execute([]string{"cache", "push", "--stdin", "--to", "file://" + cache + "?secret-key=" + key, "--store-dir", storeDir, "--closure-file", file},
		Streams{In: strings.NewReader(paths[1] + "\n\n" + paths[0] + "\n"), Out: &stdout, Err: &stderr}, "test")
	if code != 0 || !strings.Contains(stdout.String(), "pushed 0 paths, skipped 2 already in file://"+cache) {
		t.Errorf("second push: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
}

func TestCachePushBadInput(t *testing.T) {
	storeDir, file, paths := cacheStore(t)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(content), mode)
		os.Chmod(f, mode)
		return f
	}
	goodKey := filepath.Join(dir, "good.sec")
	if _, err := nixstore.GenerateKeyFile("cli-test-1", goodKey); err != nil {
		t.Fatal(err)
	}
	keyData, _ := os.ReadFile(goodKey)
	shortKey := write("short.sec", "cli-test-1:"+strings.Repeat("QUJD", 10), 0o600)
	openKey := write("open.sec", string(keyData), 0o644)
	data, _ := os.ReadFile(file)
	truncated := write("truncated.json", string(data[:len(data)/2]), 0o644)
	shape := write("shape.json", `{"version": 2, "paths": 42}`, 0o644)
	number := write("number.json", `42`, 0o644)
	otherStore := filepath.Join(t.TempDir(), "nix", "store", "00000000000000000000000000000000-x")
	os.MkdirAll(otherStore, 0o755)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown parameter", []string{"--to", "file://CACHE?compresion=zstd"}, 2, []string{`unknown parameter "compresion"`, `did you mean "compression"?`}},
		{"key of the wrong length", []string{"--to", "file://CACHE?secret-key=" + shortKey}, 2, []string{shortKey, "bytes long"}},
		{"key readable by others", []string{"--to", "file://CACHE?secret-key=" + openKey}, 2, []string{openKey, "chmod 600", "--allow-insecure-key"}},
		{"truncated closure file", []string{"--to", "file://CACHE", "--closure-file", truncated}, 1, []string{truncated}},
		{"closure file of unknown shape", []string{"--to", "file://CACHE", "--closure-file", shape}, 1, []string{shape}},
		{"closure file not JSON objects", []string{"--to", "file://CACHE", "--closure-file", number}, 1, []string{number}},
		{"missing closure file", []string{"--to", "file://CACHE", "--closure-file", filepath.Join(dir, "nope.json")}, 1, []string{"nope.json"}},
		{"path outside the store", []string{"--to", "file://CACHE", dir}, 1, []string{dir, "is not in the Nix store " + storeDir}},
		{"path not in the closure file", []string{"--to", "file://CACHE", filepath.Join(storeDir, "00000000000000000000000000000000-x")}, 1, []string{"00000000000000000000000000000000-x", "is not in " + file}},
		{"path of another store", []string{"--to", "file://CACHE", otherStore}, 1, []string{otherStore, "not in the Nix store"}},
		{"no --to", nil, 2, []string{"--to STORE_URI is required"}},
		{"plain path as URI", []string{"--to", "CACHE"}, 2, []string{"not a binary cache URI"}},
		{"store dir without closure file", []string{"--to", "file://CACHE", "--closure-file", ""}, 2, []string{"--store-dir needs --closure-file"}},
		{"bad -j", []string{"--to", "file://CACHE", "-j", "0"}, 2, []string{"-j must be at least 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			args := []string{"cache", "push", "--store-dir", storeDir}
			hasClosure := false
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "CACHE", cache))
				hasClosure = hasClosure || a == "--closure-file"
			}
			if !hasClosure {
				args = append(args, "--closure-file", file)
			}
			if !strings.Contains(tc.name, "path") {
				args = append(args, paths[1])
			}
			_, errOut, code := run(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, string(keyData[len("cli-test-1:"):len("cli-test-1:")+16])) {
				t.Error("a secret key appears in the output")
			}
			if n := narinfos(t, cache); len(n) != 0 {
				t.Errorf("published %v", n)
			}
		})
	}
	if _, errOut, code := run(t, "cache", "push", "--to", "file:///tmp/x"); code != 2 || !strings.Contains(errOut, "no store paths given") {
		t.Errorf("no paths: exit %d\n%s", code, errOut)
	}
	// The unsafe key is accepted when asked.
	cache := filepath.Join(t.TempDir(), "cache")
	_, errOut, code := run(t, "cache", "push", "--allow-insecure-key", "--to", "file://"+cache+"?secret-key="+openKey, "--store-dir", storeDir, "--closure-file", file)
	if code != 0 || len(narinfos(t, cache)) != 2 {
		t.Errorf("--allow-insecure-key: exit %d\n%s", code, errOut)
	}
}
