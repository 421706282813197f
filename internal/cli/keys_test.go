package cli

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/testenv"
)

// TestKeysGenerateAndTag: `releng keys generate` writes the key pair and
// prints commands that, pasted into a shell, check a SHA256SUMS signed
// with the key and the tag `releng tag` signed with it.
func TestKeysGenerateAndTag(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	key := filepath.Join(t.TempDir(), "release.key")
	r := newProject(t, fmt.Sprintf("name = \"demo\"\ndefault_environment = \"staging\"\n\n[environments.staging]\nrelease_key = %q\n\n[environments.bare]\n", key))
	out, errOut, code := run(t, "-C", r.Dir, "--json", "keys", "generate")
	if code != 0 {
		t.Fatalf("keys generate: exit %d: %s", code, errOut)
	}
	var rep keysReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("keys generate --json: %v\n%s", err, out)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 || rep.Private != key {
		t.Fatalf("private key file: %v %v (report %q)", st, err, rep.Private)
	}
	k, err := signing.LoadPrivateKeyFile(key, false)
	if err != nil {
		t.Fatal(err)
	}
	human, _, _ := run(t, "-C", r.Dir, "keys", "generate", "--output", filepath.Join(t.TempDir(), "second.key"))
	priv, _ := os.ReadFile(key)
	for _, l := range strings.Split(string(priv), "\n")[2:] {
		if len(l) > 20 && (strings.Contains(out, l) || strings.Contains(human, l)) {
			t.Errorf("the private key is in the output")
		}
	}
	if rep.PublicKey != k.Public().String()+" demo-release-staging" && rep.PublicKey != k.Public().String() {
		t.Errorf("public key %q is not the private key's %q", rep.PublicKey, k.Public())
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"existing key", []string{"keys", "generate"}, 1, "already exists"},
		{"environment without release_key", []string{"keys", "generate", "--environment", "bare"}, 2, "--output FILE"},
	} {
		if _, e, c := run(t, append([]string{"-C", r.Dir}, tt.args...)...); c != tt.code || !strings.Contains(e, tt.want) {
			t.Errorf("%s: exit %d, %s", tt.name, c, e)
		}
	}

	// releng tag signs with the default environment's key.
	out, errOut, code = run(t, "-C", r.Dir, "tag")
	if code != 0 || !strings.Contains(out, "signed by") {
		t.Fatalf("tag: exit %d\n%s\n%s", code, out, errOut)
	}
	// A downloaded release: a file, SHA256SUMS, its signature.
	dl := t.TempDir()
	os.WriteFile(filepath.Join(dl, "demo-2.93.0.tar.gz"), []byte("tarball"), 0o644)
	sums := fmt.Sprintf("%x  demo-2.93.0.tar.gz\n", sha256.Sum256([]byte("tarball")))
	os.WriteFile(filepath.Join(dl, "SHA256SUMS"), []byte(sums), 0o644)
	os.WriteFile(filepath.Join(dl, "SHA256SUMS.sig"), k.Sign(signing.NamespaceFile, []byte(sums)), 0o644)
	shell := func(dir, command string) error {
		cmd := exec.Command("bash", "-c", command)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if len(rep.Verify) < 4 {
		t.Fatalf("verify commands: %+v", rep.Verify)
	}
	for _, dir := range []string{dl, r.Dir} {
		if err := shell(dir, rep.Verify[0].Command); err != nil {
			t.Fatalf("%s: %v", rep.Verify[0].Command, err)
		}
	}
	if err := shell(dl, rep.Verify[1].Command); err != nil {
		t.Errorf("%s: %v", rep.Verify[1].Command, err)
	}
	os.WriteFile(filepath.Join(dl, "SHA256SUMS"), []byte(strings.Replace(sums, "demo", "Demo", 1)), 0o644)
	if err := shell(dl, rep.Verify[1].Command); err == nil {
		t.Errorf("%s accepts a changed SHA256SUMS", rep.Verify[1].Command)
	}
	if err := shell(r.Dir, strings.ReplaceAll(rep.Verify[2].Command, "VERSION", "2.93.0")); err != nil {
		t.Errorf("%s: %v", rep.Verify[2].Command, err)
	}
}
