package signing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/testenv"
)

func newKey(t *testing.T) (*PrivateKey, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "release.key")
	if _, _, err := GenerateFiles(file, "test-release"); err != nil {
		t.Fatal(err)
	}
	k, err := LoadPrivateKeyFile(file, false)
	if err != nil {
		t.Fatal(err)
	}
	return k, file
}

// TestSSHSignatureWithSSHKeygen: ssh-keygen, an independent implementation,
// accepts releng's signatures and refuses them for changed content, and
// releng accepts ssh-keygen's.
func TestSSHSignatureWithSSHKeygen(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	k, keyFile := newKey(t)
	dir := t.TempDir()
	msg := []byte("0123abcd  hello-1.0.0.tar.gz\n")
	sig := k.Sign(NamespaceFile, msg)
	if again := k.Sign(NamespaceFile, msg); !bytes.Equal(sig, again) {
		t.Errorf("two signatures of the same content differ")
	}
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("releng "+k.Public().String()+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "SHA256SUMS.sig"), sig, 0o644)
	verify := func(content []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "releng", "-n", "file", "-s", filepath.Join(dir, "SHA256SUMS.sig"))
		cmd.Stdin = bytes.NewReader(content)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := verify(msg); err != nil {
		t.Errorf("ssh-keygen -Y verify refuses releng's signature: %v", err)
	}
	changed := bytes.Clone(msg)
	changed[0] ^= 1
	if err := verify(changed); err == nil {
		t.Errorf("ssh-keygen -Y verify accepts the signature of changed content")
	}
	for _, tt := range []struct {
		name      string
		namespace string
		msg       []byte
		ok        bool
	}{
		{"same", NamespaceFile, msg, true},
		{"changed byte", NamespaceFile, changed, false},
		{"other namespace", NamespaceGit, msg, false},
	} {
		err := k.Public().Verify(tt.namespace, tt.msg, sig)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadSignature)) {
			t.Errorf("%s: Verify = %v", tt.name, err)
		}
	}
	// ssh-keygen signs with the same file; releng accepts it.
	os.WriteFile(filepath.Join(dir, "msg"), msg, 0o644)
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "file", "-f", keyFile, filepath.Join(dir, "msg")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	theirs, _ := os.ReadFile(filepath.Join(dir, "msg.sig"))
	if err := k.Public().Verify(NamespaceFile, msg, theirs); err != nil {
		t.Errorf("releng refuses ssh-keygen's signature: %v", err)
	}
	// ed25519 is deterministic: ssh-keygen writes the very same bytes.
	if !bytes.Equal(theirs, sig) {
		t.Errorf("ssh-keygen's signature differs from releng's:\n%s\n%s", theirs, sig)
	}
	// Another key's signature names that key.
	other, _ := newKey(t)
	if err := k.Public().Verify(NamespaceFile, msg, other.Sign(NamespaceFile, msg)); err == nil || !strings.Contains(err.Error(), other.Public().Fingerprint()) {
		t.Errorf("another key's signature: %v", err)
	}
}

func TestLoadPrivateKeyFile(t *testing.T) {
	_, file := newKey(t)
	os.Chmod(file, 0o644)
	_, err := LoadPrivateKeyFile(file, false)
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "chmod 600 "+file) {
		t.Errorf("a 0644 key: %v", err)
	}
	if _, err := LoadPrivateKeyFile(file, true); err != nil {
		t.Errorf("a 0644 key with allowInsecure: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.key")
	os.WriteFile(junk, []byte("SECRETSECRET"), 0o600)
	if _, err := LoadPrivateKeyFile(junk, false); err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), junk) {
		t.Errorf("a file that is no key: %v", err)
	}
	pub, err := LoadPublicKey(file+".pub", func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	k, _ := LoadPrivateKeyFile(file, true)
	if !pub.Equal(k.Public()) || pub.Comment != "test-release" {
		t.Errorf("public key file %q does not match the private key", pub)
	}
}

// TestCosignInOCILayout: a signature pushed to an oci: layout is found and
// checked; absent, by another key, or of another digest, it is not.
func TestCosignInOCILayout(t *testing.T) {
	k, _ := newKey(t)
	other, _ := newKey(t)
	ctx := context.Background()
	dir, err := registry.OpenDir(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := k.Public().CheckCosign(ctx, dir, digest); !errors.Is(err, ErrNoSignature) {
		t.Errorf("no signature yet: %v", err)
	}
	for _, tt := range []struct {
		name   string
		signer *PrivateKey
		signed string
		ok     bool
	}{
		{"another key", other, digest, false},
		{"another digest", k, "sha256:" + strings.Repeat("1", 64), false},
		{"the key", k, digest, true},
	} {
		s, err := tt.signer.CosignSign(dir.String(), tt.signed)
		if err != nil {
			t.Fatal(err)
		}
		s.Tag = CosignTag(digest) // put where digest's signature goes
		if err := PushCosign(ctx, dir, s); err != nil {
			t.Fatal(err)
		}
		err = k.Public().CheckCosign(ctx, dir, digest)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadSignature)) {
			t.Errorf("%s: CheckCosign = %v", tt.name, err)
		}
	}
	a, _ := k.CosignSign("r", digest)
	b, _ := k.CosignSign("r", digest)
	if a.Digest() != b.Digest() {
		t.Errorf("two signatures of the same index differ")
	}
}
