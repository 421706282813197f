package nixstore

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// testKey loads the test key in testdata (git does not keep its 0600
// mode, hence allowInsecure).
func testKey(t *testing.T) *SecretKey {
	t.Helper()
	k, err := LoadSecretKeyFile(filepath.Join("testdata", "keys", "test-key-1.sec"), true)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestNarInfoMatchesNix builds the narinfos of the test closure and
// compares them with the golden files, which Nix 2.8 wrote itself
// (`nix copy --to file://…?compression=none&secret-key=…`): same fields,
// order, sorting and signature, byte for byte.
func TestNarInfoMatchesNix(t *testing.T) {
	key := testKey(t)
	golden := map[string]string{
		"releng-dep":   "releng-dep.narinfo",
		"releng-a-1.0": "releng-a.narinfo",
		"releng-b":     "releng-b.narinfo",
	}
	for _, pi := range closureWant(t) {
		t.Run(pi.Path.Name, func(t *testing.T) {
			ni := NewNarInfo(&pi)
			// Compression "none": the file is the NAR itself.
			ni.URL = "nar/" + strings.TrimPrefix(pi.NarHash.String(), "sha256:") + ".nar"
			ni.Compression = "none"
			ni.FileHash, ni.FileSize = pi.NarHash, pi.NarSize
			ni.Sign(key)
			got, err := ni.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "narinfo", golden[pi.Path.Name])
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("narinfo differs from Nix's %s:\n got:\n%s\nwant:\n%s", file, got, want)
			}
			parsed, err := ParseNarInfo(want, file, DefaultStoreDir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(parsed, ni) {
				t.Errorf("parsed %+v\n  want %+v", parsed, ni)
			}
			if ok := VerifySignatures(parsed.Fingerprint(), parsed.Sigs, []PublicKey{key.PublicKey()}); len(ok) != 1 {
				t.Errorf("signature of %s does not verify", file)
			}
		})
	}
}

// TestNarInfoGolden covers what Nix's golden files do not: compression,
// several signatures (sorted, deduplicated), unsorted references.
func TestNarInfoGolden(t *testing.T) {
	infos := closureWant(t)
	pi := infos[1]
	pi.References = []StorePath{pi.References[1], pi.References[0]}
	ni := NewNarInfo(&pi)
	ni.URL = "nar/0c0zbqqbbbbn1gb3b6xrs0r2wr2j4w8bx94wxnmcnlbhzw3zc2l8.nar.zst"
	ni.Compression = "zstd"
	ni.FileHash, _ = ParseHash("sha256:0c0zbqqbbbbn1gb3b6xrs0r2wr2j4w8bx94wxnmcnlbhzw3zc2l8")
	ni.FileSize = 321
	ni.Sigs = []string{"z-key:AAAA", "a-key:BBBB", "z-key:AAAA"}
	ni.Sign(testKey(t))
	got, err := ni.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", "narinfo", "zstd-multisig.narinfo")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("narinfo differs from %s (-update rewrites it):\n got:\n%s\nwant:\n%s", file, got, want)
	}
}

func TestNarInfoMarshalErrors(t *testing.T) {
	pi := closureWant(t)[0]
	base := func() *NarInfo {
		ni := NewNarInfo(&pi)
		ni.URL, ni.Compression, ni.FileHash, ni.FileSize = "nar/x.nar", "none", pi.NarHash, pi.NarSize
		return ni
	}
	tests := []struct {
		name   string
		change func(*NarInfo)
		want   string
	}{
		{"no URL", func(ni *NarInfo) { ni.URL = "" }, "URL"},
		{"newline in URL", func(ni *NarInfo) { ni.URL = "nar/x\nSig: evil:AAAA" }, "line break"},
		{"no compression", func(ni *NarInfo) { ni.Compression = "" }, "Compression"},
		{"no file hash", func(ni *NarInfo) { ni.FileHash = Hash{} }, "FileHash"},
		{"newline in sig", func(ni *NarInfo) { ni.Sigs = []string{"k:A\nCA: x"} }, "line break"},
		{"no store path", func(ni *NarInfo) { ni.StorePath = StorePath{} }, "no store path"},
	}
	for _, tc := range tests {
		ni := base()
		tc.change(ni)
		if _, err := ni.Marshal(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseNarInfoErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "narinfo", "releng-a.narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty narinfo"},
		{"truncated", string(good[:len(good)-1]), "truncated narinfo"},
		{"no colon", replace("Compression: none", "Compression none"), `x.narinfo:3: expected "Key: value"`},
		{"empty line", replace("Compression: none\n", "Compression: none\n\n"), `x.narinfo:4: expected "Key: value"`},
		{"duplicate", replace("NarSize: 584\n", "NarSize: 584\nNarSize: 585\n"), "NarSize appears twice"},
		{"bad hash", replace("NarHash: sha256:14k5", "NarHash: sha256:e4k5"), "NarHash: invalid hash"},
		{"bad size", replace("NarSize: 584", "NarSize: -1"), "NarSize:"},
		{"bad reference", replace("References: 5awl", "References: /nix/store/5awl"), "References:"},
		{"other store", replace("StorePath: /nix/store/", "StorePath: /gnu/store/"), "not in the store directory"},
		{"bad sig", replace("Sig: test-key-1:", "Sig: test-key-1"), "not NAME:SIG"},
		{"no NarHash", strings.Replace(string(good), "NarHash: sha256:14k5vdz5jc9db4wqw666sydm6h0xzaic7r87g0ic1hs68w249ypr\n", "", 1), "has no NarHash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNarInfo([]byte(tc.in), "x.narinfo", DefaultStoreDir)
			if err == nil || !strings.HasPrefix(err.Error(), "x.narinfo") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Nix's defaults and ignored fields.
	ni, err := ParseNarInfo([]byte(replace("Compression: none\n", "System: x86_64-linux\n")), "x", DefaultStoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if ni.Compression != "bzip2" {
		t.Errorf("default compression %q", ni.Compression)
	}
	ni, err = ParseNarInfo([]byte(replace("Deriver: 7bbnap4gignibz9xbf85brhqkmqy453y-releng-a-1.0.drv", "Deriver: unknown-deriver")), "x", DefaultStoreDir)
	if err != nil || !ni.Deriver.IsZero() {
		t.Errorf("unknown-deriver: %v %v", ni.Deriver, err)
	}
}
