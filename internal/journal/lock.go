package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock is a held environment lock.
type Lock struct {
	path string
}

// LockInfo is what a lock file holds.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command"`
}

// HeldError says who holds a lock.
type HeldError struct {
	Path string
	Info LockInfo
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: another releng (%s, pid %d on %s, since %s) is publishing to this environment; wait for it, or remove the lock file if that process is gone",
		e.Path, e.Info.Command, e.Info.PID, e.Info.Host, e.Info.Since.Format(time.RFC3339))
}

// Acquire takes the lock at path for command. A lock held by a dead process
// on this host is taken over.
func Acquire(path, command string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	me := LockInfo{PID: os.Getpid(), Host: host, Since: time.Now().UTC(), Command: command}
	data, _ := json.Marshal(me)
	for attempt := 0; attempt < 3; attempt++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := f.Write(append(data, '\n'))
			cerr := f.Close()
			if werr != nil || cerr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("write lock %s: %v", path, errors.Join(werr, cerr))
			}
			return &Lock{path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // released meanwhile
		}
		var held LockInfo
		if err := json.Unmarshal(raw, &held); err != nil {
			return nil, fmt.Errorf("%s: unreadable lock file; remove it if no releng is running", path)
		}
		if held.Host == host && !alive(held.PID) {
			// Stale: take it over (remove, then retry the exclusive create).
			os.Remove(path)
			continue
		}
		return nil, &HeldError{Path: path, Info: held}
	}
	return nil, fmt.Errorf("lock %s: could not take it", path)
}

// Release removes the lock.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	return os.Remove(l.path)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
