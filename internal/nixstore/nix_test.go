package nixstore

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/nar"
	"github.com/releng-project/releng/internal/testenv"
)

// run runs a Nix command and returns its standard output.
func run(t *testing.T, n *testenv.Nix, name string, args ...string) string {
	t.Helper()
	cmd := n.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

var (
	closureOnce sync.Mutex
	closureTop  string
)

// testClosure builds testdata/closure.nix (once per run): releng-b refers
// to releng-a-1.0, which refers to itself and to releng-dep, a text
// content-addressed path.
func testClosure(t *testing.T) (*testenv.Nix, string, []PathInfo) {
	t.Helper()
	n := testenv.SetupNix(t)
	closureOnce.Lock()
	defer closureOnce.Unlock()
	if closureTop == "" {
		closureTop = strings.TrimSpace(run(t, n, "nix-build", "--no-out-link", filepath.Join("testdata", "closure.nix")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos, err := Nix{Env: n.Env}.PathInfo(ctx, true, closureTop)
	if err != nil {
		t.Fatal(err)
	}
	return n, closureTop, infos
}

// TestQueryClosure checks Nix.PathInfo against Nix itself: the closure's
// shape, and NarHash/NarSize equal to our own NAR of every path.
func TestQueryClosure(t *testing.T) {
	_, top, infos := testClosure(t)
	if len(infos) != 3 {
		t.Fatalf("%d paths in the closure, want 3", len(infos))
	}
	if err := CheckClosure(infos); err != nil {
		t.Fatal(err)
	}
	byName := map[string]PathInfo{}
	for _, pi := range infos {
		byName[pi.Path.Name] = pi
		res, err := nar.DumpPath(nil, pi.Path.String(), nar.DumpOptions{Hash: true})
		if err != nil {
			t.Fatal(err)
		}
		if Hash(res.SHA256) != pi.NarHash || res.Size != pi.NarSize {
			t.Errorf("%s: our NAR has hash %s size %d, Nix says %s %d", pi.Path, Hash(res.SHA256), res.Size, pi.NarHash, pi.NarSize)
		}
	}
	a, b, dep := byName["releng-a-1.0"], byName["releng-b"], byName["releng-dep"]
	if b.Path.String() != top || len(b.References) != 1 || b.References[0] != a.Path || b.Deriver.Name != "releng-b.drv" {
		t.Errorf("releng-b: %+v", b)
	}
	if len(a.References) != 2 || a.References[1] != a.Path || a.References[0] != dep.Path {
		t.Errorf("releng-a-1.0 should refer to releng-dep and itself: %+v", a.References)
	}
	if !strings.HasPrefix(dep.CA, "text:sha256:") || !dep.Deriver.IsZero() || len(dep.References) != 0 {
		t.Errorf("releng-dep: %+v", dep)
	}
	// On x86_64-linux the store paths are those of testdata/pathinfo.
	if runtime.GOARCH == "amd64" && runtime.GOOS == "linux" {
		want := closureWant(t)
		for i := range infos {
			got := infos[i]
			got.Signatures, want[i].Signatures = nil, nil
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("Nix reports\n %+v\nthe fixture says\n %+v", got, want[i])
			}
		}
	}
}

// TestSignatureMatchesNix signs with `nix store sign` and with releng,
// with a key Nix generated and a key releng generated: ed25519 is
// deterministic, so the signatures must be identical. The closure is
// copied to a private chroot store first, so the shared store's database
// does not collect test signatures.
func TestSignatureMatchesNix(t *testing.T) {
	n, top, _ := testClosure(t)
	dir := t.TempDir()
	store := "local?root=" + filepath.Join(dir, "root")
	// Nix makes store paths read-only; let TempDir's cleanup remove them.
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	run(t, n, "nix", "copy", "--no-check-sigs", "--to", store, top)

	nixSec, nixPub := filepath.Join(dir, "nix.sec"), filepath.Join(dir, "nix.pub")
	run(t, n, "nix-store", "--generate-binary-cache-key", "releng-test-nix-1", nixSec, nixPub)
	ours := filepath.Join(dir, "ours.sec")
	oursPub, err := GenerateKeyFile("releng-test-ours-1", ours)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, pub string }{{nixSec, ""}, {ours, oursPub.String()}} {
		key, err := LoadSecretKeyFile(c.file, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.pub == "" {
			b, _ := os.ReadFile(nixPub)
			c.pub = string(b)
		}
		if key.PublicKey().String() != c.pub {
			t.Errorf("public key of %s: ours %s, want %s", c.file, key.PublicKey(), c.pub)
		}
		run(t, n, "nix", "store", "sign", "--store", store, "--key-file", c.file, "--recursive", top)
		infos, err := Nix{Env: n.Env, Store: store}.PathInfo(context.Background(), true, top)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 3 {
			t.Fatalf("%d paths in the chroot store, want 3", len(infos))
		}
		for _, pi := range infos {
			ourSig := key.Sign(pi.Fingerprint())
			found := false
			for _, s := range pi.Signatures {
				if strings.HasPrefix(s, key.Name()+":") {
					found = true
					if s != ourSig {
						t.Errorf("%s: nix store sign wrote %s, releng %s", pi.Path, s, ourSig)
					}
				}
			}
			if !found {
				t.Errorf("%s: no signature by %s in %v", pi.Path, key.Name(), pi.Signatures)
			}
			if ok := VerifySignatures(pi.Fingerprint(), pi.Signatures, []PublicKey{key.PublicKey()}); len(ok) != 1 {
				t.Errorf("%s: Nix's signature does not verify with our code", pi.Path)
			}
		}
	}
}

// TestNarInfoMatchesNixCopy lets `nix copy` write a file:// binary cache
// (uncompressed, signed, with listings) and checks that our narinfo, NAR
// and listing for every path are what Nix wrote.
func TestNarInfoMatchesNixCopy(t *testing.T) {
	n, top, infos := testClosure(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.sec")
	if _, err := GenerateKeyFile("releng-copy-test-1", keyFile); err != nil {
		t.Fatal(err)
	}
	key, err := LoadSecretKeyFile(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	run(t, n, "nix", "copy", "--to", "file://"+cache+"?compression=none&write-nar-listing=true&secret-key="+keyFile, top)
	for _, pi := range infos {
		var narBuf bytes.Buffer
		res, err := nar.DumpPath(&narBuf, pi.Path.String(), nar.DumpOptions{Hash: true, Listing: true})
		if err != nil {
			t.Fatal(err)
		}
		ni := NewNarInfo(&pi)
		ni.URL = "nar/" + strings.TrimPrefix(Hash(res.SHA256).String(), "sha256:") + ".nar"
		ni.Compression = "none"
		ni.FileHash, ni.FileSize = Hash(res.SHA256), res.Size
		ni.Sign(key)
		got, err := ni.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		nixFile := filepath.Join(cache, pi.Path.Hash+".narinfo")
		want, err := os.ReadFile(nixFile)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("narinfo of %s differs from Nix's:\n ours:\n%s\n nix:\n%s", pi.Path, got, want)
		}
		nixNAR, err := os.ReadFile(filepath.Join(cache, ni.URL))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(nixNAR, narBuf.Bytes()) {
			t.Errorf("NAR of %s differs from Nix's", pi.Path)
		}
		// Nix 2.8 does not sort listing keys: compare as JSON values.
		ours, err := res.Listing.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		nixLS, err := os.ReadFile(filepath.Join(cache, pi.Path.Hash+".ls"))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if json.Unmarshal(ours, &a) != nil || json.Unmarshal(nixLS, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("listing of %s differs from Nix's:\n ours: %s\n  nix: %s", pi.Path, ours, nixLS)
		}
	}
}

// TestNixReadsOurCache writes a file:// binary cache with releng alone
// (NARs, narinfos, signatures) and has Nix check it: `nix store verify`
// with our public key as the only trusted key, and `nix path-info` on it.
// A narinfo signed by another key must then fail verification.
func TestNixReadsOurCache(t *testing.T) {
	n, top, infos := testClosure(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.sec")
	pub, err := GenerateKeyFile("releng-cache-test-1", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadSecretKeyFile(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	if err := os.MkdirAll(filepath.Join(cache, "nar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "nix-cache-info"), []byte("StoreDir: /nix/store\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pi := range infos {
		ni := NewNarInfo(&pi)
		ni.Sigs = nil
		ni.URL = "nar/" + pi.Path.Hash + ".nar"
		ni.Compression = "none"
		f, err := os.Create(filepath.Join(cache, ni.URL))
		if err != nil {
			t.Fatal(err)
		}
		res, err := nar.DumpPath(f, pi.Path.String(), nar.DumpOptions{Hash: true})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ni.FileHash, ni.FileSize = Hash(res.SHA256), res.Size
		ni.Sign(key)
		data, err := ni.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cache, pi.Path.Hash+".narinfo"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := "file://" + cache
	run(t, n, "nix", "store", "verify", "--store", store, "--sigs-needed", "1",
		"--trusted-public-keys", pub.String(), "--recursive", top)

	fromCache, err := Nix{Env: n.Env, Store: store}.PathInfo(context.Background(), true, top)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromCache) != len(infos) {
		t.Fatalf("%d paths in our cache, want %d", len(fromCache), len(infos))
	}
	for i := range infos {
		got, want := fromCache[i], infos[i]
		if got.Path != want.Path || got.NarHash != want.NarHash || got.NarSize != want.NarSize ||
			!reflect.DeepEqual(got.References, want.References) || got.Deriver != want.Deriver || got.CA != want.CA {
			t.Errorf("Nix reads from our cache\n %+v\nwant\n %+v", got, want)
		}
		if len(got.Signatures) != 1 || !pub.Verify(got.Fingerprint(), got.Signatures[0]) {
			t.Errorf("%s: signatures %v", got.Path, got.Signatures)
		}
	}

	// Re-sign the top path with a key Nix does not trust: verification fails.
	otherFile := filepath.Join(dir, "other.sec")
	if _, err := GenerateKeyFile("untrusted-1", otherFile); err != nil {
		t.Fatal(err)
	}
	other, _ := LoadSecretKeyFile(otherFile, false)
	file := filepath.Join(cache, infos[len(infos)-1].Path.Hash+".narinfo")
	for _, pi := range infos {
		if pi.Path.String() == top {
			file = filepath.Join(cache, pi.Path.Hash+".narinfo")
		}
	}
	data, _ := os.ReadFile(file)
	ni, err := ParseNarInfo(data, file, DefaultStoreDir)
	if err != nil {
		t.Fatal(err)
	}
	ni.Sigs = nil
	ni.Sign(other)
	data, _ = ni.Marshal()
	os.WriteFile(file, data, 0o644)
	cmd := n.Command("nix", "store", "verify", "--store", store, "--sigs-needed", "1", "--trusted-public-keys", pub.String(), top)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "untrusted") {
		t.Errorf("nix store verify accepted a path signed by an untrusted key (%v):\n%s", err, out)
	}
}
