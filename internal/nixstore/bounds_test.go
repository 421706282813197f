package nixstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/fsutil"
)

// sparseFile creates a file of size bytes that takes no disk space.
func sparseFile(t *testing.T, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileReadsAreBounded(t *testing.T) {
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	bigKey := sparseFile(t, "key", fsutil.MaxSmallState+1)
	bigClosure := sparseFile(t, "closure.json", fsutil.MaxPathInfo+1)
	reads := []struct {
		name string
		path string
		read func(string) error
	}{
		{"public key", bigKey, func(p string) error { _, err := LoadPublicKeyFile(p); return err }},
		{"secret key", bigKey, func(p string) error { _, err := LoadSecretKeyFile(p, false); return err }},
		{"closure file", bigClosure, func(p string) error { _, err := LoadClosureFile(p, DefaultStoreDir); return err }},
	}
	for _, r := range reads {
		err := r.read(r.path)
		var big *fsutil.TooLargeError
		if !errors.As(err, &big) || !strings.Contains(err.Error(), r.path) {
			t.Errorf("%s over the cap: %v", r.name, err)
		}
		if err := r.read(zero); err == nil || !strings.Contains(err.Error(), zero) {
			t.Errorf("%s from /dev/zero: %v", r.name, err)
		}
	}
}

func TestCommandOutputIsBounded(t *testing.T) {
	start := time.Now()
	// The shell's child holds stdout and stderr: it must be stopped too.
	cmd := exec.Command("sh", "-c", "yes; true")
	cmd.Stderr = &TailBuffer{Max: 100}
	_, err := CommandOutput(cmd, "yes", 1<<20)
	if err == nil || !strings.Contains(err.Error(), "yes printed more than 1 MiB") {
		t.Errorf("error: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	out, err := CommandOutput(exec.Command("echo", "hello"), "echo", 1<<20)
	if err != nil || string(out) != "hello\n" {
		t.Errorf("echo: %q %v", out, err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &TailBuffer{Max: 4}
	tb.Write([]byte("ab"))
	if tb.String() != "ab" || tb.Cut() {
		t.Errorf("%q %v", tb.String(), tb.Cut())
	}
	tb.Write([]byte("cdef"))
	if tb.String() != "cdef" || !tb.Cut() {
		t.Errorf("%q %v", tb.String(), tb.Cut())
	}
}
