package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/releng-project/releng/internal/fsutil"
)

// The lock is flock(2) on the lock file, which is never removed: the kernel
// gives it to one process at a time and drops it when its holder ends,
// however it ends, so taking over a stale lock is atomic (no read, check and
// remove that two processes can interleave). The holder writes who it is
// into the file, for the message of a refused run. flock is per host (see
// docs/DECISIONS.md): a record of another host is respected as it stands.

const (
	// lockWait bounds how long a refused Acquire waits to read the record of
	// the holder (which writes it just after taking the flock), and how long
	// Acquire retries when the lock file is replaced under it.
	lockWait = 500 * time.Millisecond
	lockPoll = 2 * time.Millisecond
)

// Lock is a held environment lock.
type Lock struct {
	path string
	f    *os.File // holds the flock while open
}

// LockInfo is what a lock file holds.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command"`
}

// lockRecord is the content of the lock file. Flock says its writer held the
// flock: such a record of this host is stale once the flock is free, whatever
// process now has its pid. A record without it is an older releng's, which
// held the lock by the file alone: it is stale when its pid has ended.
type lockRecord struct {
	LockInfo
	Flock bool `json:"flock,omitempty"`
}

// HeldError says who holds a lock.
type HeldError struct {
	Path string
	Info LockInfo
}

func (e *HeldError) Error() string {
	if e.Info.PID == 0 {
		return fmt.Sprintf("%s: another releng is publishing to this environment (it has not written its name into the lock file yet); wait for it", e.Path)
	}
	who := fmt.Sprintf("%s: another releng (%s, pid %d on %s, since %s) is publishing to this environment",
		e.Path, e.Info.Command, e.Info.PID, e.Info.Host, e.Info.Since.Format(time.RFC3339))
	if host, _ := os.Hostname(); e.Info.Host != host {
		return who + "; wait for it, or, only if that process is gone, remove the lock file (releng cannot check a process of another host)"
	}
	return who + "; wait for it to finish (once it has ended, the lock is free)"
}

// Acquire takes the lock at path for command. A lock whose holder has ended
// on this host is taken over.
func Acquire(path, command string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	me := lockRecord{LockInfo: LockInfo{PID: os.Getpid(), Host: host, Since: time.Now().UTC(), Command: command}, Flock: true}
	deadline := time.Now().Add(lockWait)
	for {
		f, err := openLock(path)
		if err != nil {
			return nil, err
		}
		got, err := tryFlock(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if got {
			l, err := take(f, path, me)
			if err != errReplaced {
				return l, err
			}
		} else {
			// Held: say by whom. Its holder may not have written its record
			// yet (then the file is empty, or still names the dead holder it
			// took over from): read again, for a while.
			rec, ok, err := readRecord(f, path)
			f.Close()
			named := err == nil && ok && rec.PID > 0 && (rec.Host != host || alive(rec.PID))
			if named {
				return nil, &HeldError{Path: path, Info: rec.LockInfo}
			}
			if time.Now().After(deadline) {
				return nil, &HeldError{Path: path} // held, by a holder not named yet
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: the lock file keeps being removed or replaced; releng creates it and never removes it, so leave it in place", path)
		}
		time.Sleep(lockPoll)
	}
}

// openLock opens (creating) the lock file, refusing a symbolic link (its
// target is neither created nor written) and anything but a regular file.
func openLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: the lock file is a symbolic link; releng does not follow one here (remove the link: releng creates the lock file itself)", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = &fsutil.NotRegularError{Path: path, Mode: st.Mode()}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tryFlock takes the flock of f without waiting, reporting false when another
// open file holds it.
func tryFlock(f *os.File, path string) (bool, error) {
	err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	return true, nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for ferr = syscall.Flock(int(fd), how); ferr == syscall.EINTR; {
			ferr = syscall.Flock(int(fd), how)
		}
	}); err != nil {
		return err
	}
	return ferr
}

// errReplaced: the lock file was removed or replaced between its opening and
// its flock (by hand, or by an older releng's release): that flock is on a
// file nobody else opens. Acquire opens it again.
var errReplaced = errors.New("lock file replaced")

// take finishes Acquire once f's flock is held: the file must still be the
// one at path, and its record must not be a holder that the flock does not
// show. It then writes me as the record.
func take(f *os.File, path string, me lockRecord) (*Lock, error) {
	l := &Lock{path: path, f: f}
	st, err := f.Stat()
	if err == nil {
		var cur fs.FileInfo
		if cur, err = os.Lstat(path); errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(st, cur) {
			err = errReplaced
		}
	}
	var rec lockRecord
	if err == nil {
		// A garbled record (!ok) is free: no holder has the flock, and an
		// older releng wrote its record whole before it held the lock.
		var ok bool
		if rec, ok, err = readRecord(f, path); err == nil && ok && heldWithoutFlock(rec, me) {
			err = &HeldError{Path: path, Info: rec.LockInfo}
		}
	}
	if err == nil {
		// Written over the old record, then cut to length: a reader sees the
		// old record or the new one first, never an empty file.
		data, _ := json.Marshal(me)
		data = append(data, '\n')
		if _, err = f.WriteAt(data, 0); err == nil {
			err = f.Truncate(int64(len(data)))
		}
		if err != nil {
			err = fmt.Errorf("write lock %s: %w", path, err)
		}
	}
	if err != nil {
		l.unlock()
		return nil, err
	}
	return l, nil
}

// heldWithoutFlock says whether rec, found while the flock is ours, names a
// holder all the same: one on another host (flock is per host), or a live
// process of an older releng, which held the lock by the file alone. A
// record written under flock on this host is stale now, whatever process
// has its pid since.
func heldWithoutFlock(rec, me lockRecord) bool {
	switch {
	case rec.PID <= 0:
		return false
	case rec.Host != me.Host:
		return true
	case rec.Flock || rec.PID == me.PID:
		return false
	}
	return alive(rec.PID)
}

// readRecord reads the record at the start of f, bounded; ok is false when
// there is none (an empty file) or it does not parse. A tail after it is
// what is left of a longer old record while the new one is written.
func readRecord(f *os.File, path string) (rec lockRecord, ok bool, err error) {
	raw, err := fsutil.ReadAllLimited(io.NewSectionReader(f, 0, fsutil.MaxSmallState+1), path, fsutil.MaxSmallState)
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return rec, false, err
	}
	if json.NewDecoder(bytes.NewReader(raw)).Decode(&rec) != nil {
		return lockRecord{}, false, nil
	}
	return rec, true, nil
}

// Release frees the lock: its record is emptied and its flock dropped. The
// file stays (removing it would let a process that opened it before the
// removal, and one that creates it anew, both hold a lock).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	terr := l.f.Truncate(0)
	return errors.Join(terr, l.unlock())
}

// unlock drops the flock (also when a child forked meanwhile still shares
// the open file) and closes the file.
func (l *Lock) unlock() error {
	f := l.f
	l.f = nil
	uerr := flock(f, syscall.LOCK_UN)
	return errors.Join(uerr, f.Close())
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
