package nixstore

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeKey writes a key file with the given mode.
func writeKey(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.sec")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeysFromNix(t *testing.T) {
	// testdata/keys was written by `nix-store --generate-binary-cache-key`.
	sec, err := os.ReadFile(filepath.Join("testdata", "keys", "test-key-1.sec"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join("testdata", "keys", "test-key-1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{string(sec), string(sec) + "\n", string(sec) + "\r\n"} {
		k, err := LoadSecretKeyFile(writeKey(t, content, 0o600), false)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name() != "test-key-1" || k.PublicKey().String() != string(pub) {
			t.Errorf("derived public key %s, want %s", k.PublicKey(), pub)
		}
	}
	p := filepath.Join(t.TempDir(), "key.pub")
	os.WriteFile(p, append(pub, '\n'), 0o644)
	pk, err := LoadPublicKeyFile(p)
	if err != nil || pk.String() != string(pub) {
		t.Errorf("public key %v %v", pk, err)
	}
}

func TestSecretKeyFileErrors(t *testing.T) {
	sec, _ := os.ReadFile(filepath.Join("testdata", "keys", "test-key-1.sec"))
	secret := strings.TrimPrefix(string(sec), "test-key-1:")
	raw, _ := base64.StdEncoding.DecodeString(secret)
	short := "test-key-1:" + base64.StdEncoding.EncodeToString(raw[:32])
	mismatched := append([]byte{}, raw...)
	mismatched[40] ^= 1
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		allow   bool
		want    []string
	}{
		{"group readable", string(sec), 0o640, false, []string{"mode 0640", "chmod 600 FILE", "--allow-insecure-key"}},
		{"world readable", string(sec), 0o644, false, []string{"chmod 600 FILE"}},
		{"group writable", string(sec), 0o620, false, []string{"chmod 600 FILE"}},
		{"32 bytes", short, 0o600, false, []string{"32 bytes long, expected 64"}},
		{"public key as secret", "test-key-1:" + base64.StdEncoding.EncodeToString(raw[32:]), 0o600, false, []string{"expected 64"}},
		{"no colon", secret, 0o600, false, []string{"no ':'"}},
		{"no name", ":" + secret, 0o600, false, []string{"key name must be non-empty"}},
		{"no data", "test-key-1:", 0o600, false, []string{"no data"}},
		{"bad base64", "test-key-1:" + secret[:20] + "!!" + secret[22:], 0o600, false, []string{"not valid base64"}},
		{"space inside", "test-key-1:" + secret[:30] + " " + secret[30:], 0o600, false, []string{"not valid base64"}},
		{"mismatched halves", "test-key-1:" + base64.StdEncoding.EncodeToString(mismatched), 0o600, false, []string{"public half does not match"}},
		{"pem-like", "-----BEGIN KEY-----\n" + secret + ":\n-----END KEY-----\n", 0o600, false, []string{"key name must be non-empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := writeKey(t, tc.content, tc.mode)
			_, err := LoadSecretKeyFile(file, tc.allow)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, file) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, strings.ReplaceAll(w, "FILE", file)) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			assertNoKeyMaterial(t, msg, secret)
		})
	}
	// With allowInsecure, a readable key loads.
	if _, err := LoadSecretKeyFile(writeKey(t, string(sec), 0o644), true); err != nil {
		t.Errorf("allowInsecure: %v", err)
	}
	// A missing file names the file.
	missing := filepath.Join(t.TempDir(), "missing.sec")
	if _, err := LoadSecretKeyFile(missing, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

// assertNoKeyMaterial fails if any 8 consecutive characters of the
// base64 key appear in s.
func assertNoKeyMaterial(t *testing.T, s, b64 string) {
	t.Helper()
	for i := 0; i+8 <= len(b64); i++ {
		if strings.Contains(s, b64[i:i+8]) {
			t.Fatalf("%q contains key material", s)
		}
	}
}

func TestSecretKeyNeverPrinted(t *testing.T) {
	k := testKey(t)
	sec, _ := os.ReadFile(filepath.Join("testdata", "keys", "test-key-1.sec"))
	secret := strings.TrimPrefix(string(sec), "test-key-1:")
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		assertNoKeyMaterial(t, fmt.Sprintf(format, k), secret)
	}
	var hexKey strings.Builder
	for _, b := range k.key {
		fmt.Fprintf(&hexKey, "%02x", b)
	}
	if strings.Contains(fmt.Sprintf("%x", k), hexKey.String()[:16]) {
		t.Errorf("formatting with %s prints the key", "%x")
	}
}

func TestGenerateKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "local.sec")
	pub, err := GenerateKeyFile("releng-local-1", file)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	k, err := LoadSecretKeyFile(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.PublicKey().String() != pub.String() || !strings.HasPrefix(pub.String(), "releng-local-1:") {
		t.Errorf("public key %s, secret key's %s", pub, k.PublicKey())
	}
	if _, err := GenerateKeyFile("releng-local-1", file); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwriting: %v", err)
	}
	if _, err := GenerateKeyFile("bad:name", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("a key name with ':' was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	k := testKey(t)
	other, err := GenerateKeyFile("other-1", filepath.Join(t.TempDir(), "o.sec"))
	if err != nil {
		t.Fatal(err)
	}
	fp := closureWant(t)[2].Fingerprint()
	sig := k.Sign(fp)
	// Nix signed the same fingerprint with the same key (testdata).
	if want := closureWant(t)[2].Signatures[0]; sig != want {
		t.Errorf("signature %s, Nix's %s", sig, want)
	}
	pub := k.PublicKey()
	renamed := PublicKey{Name: "renamed", Key: pub.Key}
	tests := []struct {
		name string
		fp   string
		sigs []string
		keys []PublicKey
		want int
	}{
		{"good", fp, []string{sig}, []PublicKey{pub}, 1},
		{"among others", fp, []string{"x:AAAA", sig}, []PublicKey{other, pub}, 1},
		{"tampered fingerprint", strings.Replace(fp, ";176;", ";177;", 1), []string{sig}, []PublicKey{pub}, 0},
		{"other key", fp, []string{sig}, []PublicKey{other}, 0},
		{"same key other name", fp, []string{sig}, []PublicKey{renamed}, 0},
		{"garbage signature", fp, []string{"test-key-1:garbage", "test-key-1"}, []PublicKey{pub}, 0},
		{"no signatures", fp, nil, []PublicKey{pub}, 0},
	}
	for _, tc := range tests {
		if got := VerifySignatures(tc.fp, tc.sigs, tc.keys); len(got) != tc.want {
			t.Errorf("%s: %d keys verified (%v), want %d", tc.name, len(got), got, tc.want)
		}
	}
	if _, err := ParsePublicKey("k:" + base64.StdEncoding.EncodeToString(make([]byte, 31))); err == nil || !strings.Contains(err.Error(), "31 bytes long, expected 32") {
		t.Errorf("short public key: %v", err)
	}
}
