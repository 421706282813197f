package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPeek(t *testing.T) {
	host, _ := os.Hostname()
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	record := func(r lockRecord) string { b, _ := json.Marshal(r); return string(b) + "\n" }
	dead := lockRecord{LockInfo: LockInfo{PID: 1 << 30, Host: host, Since: since, Command: "upload"}, Flock: true}
	other := lockRecord{LockInfo: LockInfo{PID: 4242, Host: host + "-elsewhere", Since: since, Command: "upload"}, Flock: true}
	oldLive := lockRecord{LockInfo: LockInfo{PID: os.Getppid(), Host: host, Since: since, Command: "upload"}}
	tests := []struct {
		name    string
		content *string // nil: no file
		hold    bool    // Acquire it first
		held    bool
		pid     int
		wantErr string
	}{
		{name: "no lock file", held: false},
		{name: "released (empty record)", content: ptr(""), held: false},
		{name: "held by this process", hold: true, held: true, pid: os.Getpid()},
		{name: "holder killed on this host", content: ptr(record(dead)), held: false, pid: dead.PID},
		{name: "record of another host", content: ptr(record(other)), held: true, pid: 4242},
		{name: "older releng alive, no flock", content: ptr(record(oldLive)), held: true, pid: oldLive.PID},
		{name: "garbled record", content: ptr("{not json"), held: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env.lock")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.hold {
				l, err := Acquire(path, "upload")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Release()
			}
			st, err := Peek(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Held != tc.held || st.Info.PID != tc.pid {
				t.Errorf("Peek = %+v, want held %v pid %d", st, tc.held, tc.pid)
			}
			if _, err := os.Stat(path); tc.content == nil && !tc.hold && err == nil {
				t.Errorf("Peek created the lock file")
			}
			// Peek leaves the lock free to take when nobody holds it.
			if !tc.held {
				l, err := Acquire(path, "upload")
				if err != nil {
					t.Fatalf("Acquire after Peek: %v", err)
				}
				l.Release()
			}
		})
	}
	t.Run("symbolic link", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "target"), []byte(record(other)), 0o644)
		os.Symlink("target", filepath.Join(dir, "env.lock"))
		if _, err := Peek(filepath.Join(dir, "env.lock")); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Peek of a link: %v", err)
		}
	})
}

func ptr(s string) *string { return &s }
