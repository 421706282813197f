package journal

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
)

func TestJournalResume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "local.journal")
	j, err := Open(p, "hello 1.0.0 abc")
	if err != nil {
		t.Fatal(err)
	}
	must(t, j.Append(Entry{Kind: "object", Key: "file:///r/a", Size: 3, SHA256: "aa"}))
	must(t, j.Append(Entry{Kind: "upload", Key: "s3://b/big", Upload: &bucket.UploadState{ID: "u1", PartSize: 5, Parts: []bucket.Part{{Number: 1, ETag: "e1", Size: 5}}}}))
	must(t, j.Append(Entry{Kind: "step", Step: "cache"}))
	j.Close()
	// Another release's entries, and a line cut short by a crash.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	other, _ := json.Marshal(Entry{Release: "hello 0.9.0 def", Kind: "step", Step: "releases"})
	f.Write(append(other, '\n'))
	f.Write([]byte(`{"release":"hello 1.0.0 abc","kind":"st`))
	f.Close()

	j, err = Open(p, "hello 1.0.0 abc")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if !j.StepDone("cache") || j.StepDone("releases") {
		t.Errorf("steps: %v", j.Steps())
	}
	if e, ok := j.Object("file:///r/a"); !ok || e.SHA256 != "aa" {
		t.Errorf("object: %+v %v", e, ok)
	}
	u, ok := j.Upload("s3://b/big")
	if !ok || u.ID != "u1" || len(u.Parts) != 1 {
		t.Errorf("upload state: %+v %v", u, ok)
	}
	must(t, j.Append(Entry{Kind: "object", Key: "s3://b/big", Size: 10}))
	if _, ok := j.Upload("s3://b/big"); ok {
		t.Error("a completed upload is still in progress")
	}
	steps, objects, err := Summary(p, "hello 1.0.0 abc")
	if err != nil || len(steps) != 1 || objects != 2 {
		t.Errorf("summary: %v %d %v", steps, objects, err)
	}
}

func TestCorruptJournalInTheMiddle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.journal")
	os.WriteFile(p, []byte("garbage\n{\"kind\":\"step\"}\n"), 0o644)
	if _, err := Open(p, "r"); err == nil {
		t.Error("a corrupt line in the middle was accepted")
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local.lock")
	l, err := Acquire(p, "upload")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(p, "upload")
	var held *HeldError
	if !errors.As(err, &held) || held.Info.PID != os.Getpid() {
		t.Fatalf("second acquire: %v", err)
	}
	must(t, l.Release())

	// A lock left by a dead process on this host is taken over.
	cmd := exec.Command("true")
	must(t, cmd.Run())
	host, _ := os.Hostname()
	stale, _ := json.Marshal(LockInfo{PID: cmd.Process.Pid, Host: host, Command: "upload"})
	os.WriteFile(p, stale, 0o644)
	l, err = Acquire(p, "upload")
	if err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	l.Release()
	// A lock of another host is respected.
	foreign, _ := json.Marshal(LockInfo{PID: 1, Host: "elsewhere", Command: "upload"})
	os.WriteFile(p, foreign, 0o644)
	if _, err := Acquire(p, "upload"); !errors.As(err, &held) {
		t.Errorf("foreign lock: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
