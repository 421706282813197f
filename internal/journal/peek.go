package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/releng-project/releng/internal/fsutil"
)

// LockState is what a look at a lock file finds, without taking the lock.
type LockState struct {
	// Held: a process holds the lock. Info names it once it has written
	// its record (PID 0 until then).
	Held bool
	// Info is the holder's record; when the lock is not held, the record
	// of a holder that ended without releasing it (killed, or its host
	// went down), if any.
	Info LockInfo
}

// Peek looks at the lock at path as Acquire would judge it, without creating
// the file or taking the lock for longer than a shared flock's test: a
// missing file is a free lock; a record of another host is held as it
// stands (flock is per host); a record of this host is held while its
// flock is, or while the pid of an older releng's record is alive.
func Peek(path string) (LockState, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return LockState{}, nil
	}
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return LockState{}, fmt.Errorf("%s: the lock file is a symbolic link; releng does not follow one here (remove the link: releng creates the lock file itself)", path)
		}
		return LockState{}, fmt.Errorf("lock %s: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		if err == nil {
			err = &fsutil.NotRegularError{Path: path, Mode: st.Mode()}
		}
		return LockState{}, err
	}
	err = flock(f, syscall.LOCK_SH|syscall.LOCK_NB)
	flocked := errors.Is(err, syscall.EWOULDBLOCK)
	if err == nil {
		err = flock(f, syscall.LOCK_UN)
	}
	if err != nil && !flocked {
		return LockState{}, fmt.Errorf("lock %s: %w", path, err)
	}
	rec, ok, err := readRecord(f, path)
	if err != nil {
		return LockState{}, err
	}
	if !ok {
		rec = lockRecord{}
	}
	host, _ := os.Hostname()
	held := flocked || rec.PID > 0 && (rec.Host != host || !rec.Flock && alive(rec.PID))
	return LockState{Held: held, Info: rec.LockInfo}, nil
}
