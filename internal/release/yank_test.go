package release

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/releng-project/releng/internal/signing"
	"github.com/releng-project/releng/internal/testenv"
)

// TestYankSignedNothingMoved: a release that nothing points at (as a
// maintenance release) in a directory releases bucket of an environment
// with a release_key: a 0644 key is refused before anything is written;
// then yank writes yanked.json and an SSH signature that ssh-keygen -Y
// verify accepts (and refuses once a byte changed), says that nothing else
// moved, and writes no private key anywhere; --undo removes both.
func TestYankSignedNothingMoved(t *testing.T) {
	testenv.LookPath(t, "ssh-keygen", "apt-get install -y openssh-client")
	keyFile := filepath.Join(t.TempDir(), "release.key")
	files, pub, err := signing.GenerateFiles(keyFile, "syn-release")
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.NewGitRepo(t)
	r.Write("version.json", "{\n  \"version\": \"1.1.0\",\n  \"official_release\": true,\n  \"release_name\": \"x\"\n}\n")
	r.Write("releng.toml", "name = \"syn\"\n\n[environments.dirs]\nreleases = \"out/releases\"\nrelease_key = \""+files.Private+"\"\n")
	r.Write(".gitignore", "/release/\n/out/\n")
	r.CommitAll("syn")
	vdir := filepath.Join(r.Dir, "out", "releases", "syn", "syn-1.0.1")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(vdir, "manifest.nix"), []byte("{\n  x86_64-linux = \"/nix/store/00000000000000000000000000000000-syn-1.0.1\";\n}\n"), 0o644)
	p, err := project.Open(project.Options{Dir: r.Dir})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	yank := func(opts YankOptions) (*YankReport, error) {
		opts.Version, opts.Environment, opts.NoConfirm = "1.0.1", "dirs", true
		opts.Run = &runctx.Run{Events: logEvents(&log)}
		return Yank(context.Background(), p, opts)
	}
	yanked := filepath.Join(vdir, "yanked.json")

	os.Chmod(keyFile, 0o644)
	if _, err := yank(YankOptions{Reason: "broken"}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("yank with a 0644 release key: %v, want a refusal naming chmod 600", err)
	}
	if _, err := os.Stat(yanked); err == nil {
		t.Fatal("the refused yank wrote yanked.json")
	}
	os.Chmod(keyFile, 0o600)

	rep, err := yank(YankOptions{Reason: "miscompiled"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "only yanked.json is written") || len(rep.Record.Moved) != 0 {
		t.Errorf("notes %q, moves %v: want only yanked.json, said", rep.Notes, rep.Record.Moved)
	}
	content, err := os.ReadFile(yanked)
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	os.WriteFile(allowed, []byte("syn-release "+pub.String()+"\n"), 0o644)
	sshVerify := func(content []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "syn-release", "-n", "file", "-s", yanked+".sig")
		cmd.Stdin = bytes.NewReader(content)
		return cmd.Run()
	}
	if err := sshVerify(content); err != nil {
		t.Errorf("ssh-keygen -Y verify refuses yanked.json.sig: %v", err)
	}
	tampered := bytes.Clone(content)
	tampered[5] ^= 1
	if sshVerify(tampered) == nil {
		t.Error("ssh-keygen -Y verify accepts yanked.json with a byte changed")
	}
	// Again: yanked.json is there, nothing is sent.
	rep, err = yank(YankOptions{Reason: "miscompiled"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Steps {
		if s.Sent != 0 {
			t.Errorf("a second yank sent %d objects in %s", s.Sent, s.Step)
		}
	}
	scanForSecrets(t, keySecrets(t, keyFile), r.Dir, map[string]string{"the log": log.String()})

	if _, err := yank(YankOptions{Undo: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{yanked, yanked + ".sig"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("--undo left %s", f)
		}
	}
}
