package journal

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/plan"
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
	steps, objects, _, err := Summary(p, "hello 1.0.0 abc")
	if err != nil || len(steps) != 1 || objects != 2 {
		t.Errorf("summary: %v %d %v", steps, objects, err)
	}
}

// TestProgressAgainstPlan: status counts what was sent since a step's
// last plan, against that plan's totals.
func TestProgressAgainstPlan(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.journal")
	j, err := Open(p, "r")
	if err != nil {
		t.Fatal(err)
	}
	old := plan.Totals{Send: 9}
	must(t, j.Append(Entry{Kind: "plan", Step: "releases", Plan: &old}))
	must(t, j.Append(Entry{Kind: "object", Step: "releases", Key: "k0", Size: 5}))
	tot := plan.Totals{Send: 3, SendBytes: 30}
	must(t, j.Append(Entry{Kind: "plan", Step: "releases", Plan: &tot}))
	must(t, j.Append(Entry{Kind: "object", Step: "releases", Key: "k1", Size: 10}))
	must(t, j.Append(Entry{Kind: "object", Step: "releases", Key: "k2", Size: 10, Note: "already there"}))
	must(t, j.Append(Entry{Kind: "object", Step: "releases", Key: "k3", Size: 10}))
	j.Close()
	_, _, progress, err := Summary(p, "r")
	if err != nil || len(progress) != 1 {
		t.Fatalf("progress: %+v %v", progress, err)
	}
	if sp := progress[0]; sp.Plan == nil || sp.Plan.Send != 3 || sp.Sent != 2 || sp.SentBytes != 20 || sp.Done {
		t.Errorf("progress: %+v", sp)
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

func TestJournalReadIsBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.journal")
	must(t, os.WriteFile(big, nil, 0o644))
	must(t, os.Truncate(big, fsutil.MaxJournal+1)) // sparse
	zero := filepath.Join(dir, "zero.journal")
	must(t, os.Symlink("/dev/zero", zero))
	for _, c := range []struct {
		path string
		want any
	}{{big, new(*fsutil.TooLargeError)}, {zero, new(*fsutil.NotRegularError)}} {
		_, err := Open(c.path, "r")
		if !errors.As(err, c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Open(%s): %v", c.path, err)
		}
		_, err = read(c.path) // what Summary reads with
		if !errors.As(err, c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("read(%s): %v", c.path, err)
		}
	}
}

// Found by FuzzJournal: a garbled last line was ignored but kept, so the
// first append after it made the journal unreadable; a whole last line
// without its newline was counted, then cut from the file, so the next
// Open read another state.
func TestCrashLeftovers(t *testing.T) {
	good := `{"release":"r","kind":"step","step":"cache"}` + "\n"
	for _, tc := range []struct {
		name, tail string
		docs       bool // the tail's step counts
	}{
		{"garbled last line", "garbage\n", false},
		{"last line without newline", `{"release":"r","kind":"step","step":"docs"}`, false},
		{"cut short", `{"release":"r","kind":"st`, false},
		{"whole", `{"release":"r","kind":"step","step":"docs"}` + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.journal")
			must(t, os.WriteFile(p, []byte(good+tc.tail), 0o644))
			steps, _, _, err := Summary(p, "r")
			if err != nil || len(steps) != map[bool]int{false: 1, true: 2}[tc.docs] {
				t.Fatalf("Summary: %v %v", steps, err)
			}
			j, err := Open(p, "r")
			if err != nil {
				t.Fatal(err)
			}
			if j.StepDone("docs") != tc.docs {
				t.Errorf("docs done: %v", j.StepDone("docs"))
			}
			must(t, j.Append(Entry{Kind: "step", Step: "releases"}))
			j.Close()
			j, err = Open(p, "r")
			if err != nil {
				t.Fatalf("after an append: %v", err)
			}
			defer j.Close()
			if !j.StepDone("cache") || !j.StepDone("releases") || j.StepDone("docs") != tc.docs {
				t.Errorf("after an append: steps %v", j.Steps())
			}
		})
	}
}

// A line longer than a line buffer (here 17 MiB) does not end the reading
// silently: the entries after it count.
func TestLongLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.journal")
	long, _ := json.Marshal(Entry{Release: "r", Kind: "object", Key: "k", Note: strings.Repeat("n", 17<<20)})
	data := append(append(long, '\n'), `{"release":"r","kind":"step","step":"cache"}`+"\n"...)
	must(t, os.WriteFile(p, data, 0o644))
	j, err := Open(p, "r")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if !j.StepDone("cache") || j.Objects() != 1 {
		t.Errorf("steps %v, %d objects", j.Steps(), j.Objects())
	}
}
