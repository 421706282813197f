package nar

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// On Linux, files are read with plain system calls: os.Open would make
// four fcntl calls and an epoll registration per file, more than the
// reading itself costs for most files of a store path. The types of a
// directory's entries come from getdents (d_type), so no lstat is needed
// per entry either.

func openRegular(path string) (*File, error) {
	fd, err := open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := ignoringEINTR(func() error { return syscall.Fstat(fd, &st) }); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, changedError(path)
	}
	return &File{
		Size: st.Size,
		Mode: statMode(st.Mode),
		read: func(p []byte) (int, error) {
			for {
				n, err := syscall.Read(fd, p)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					return 0, &fs.PathError{Op: "read", Path: path, Err: err}
				}
				return n, nil
			}
		},
		close: func() error { return syscall.Close(fd) },
	}, nil
}

func open(path string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(path, flags|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}

// direntHeader is the size of linux_dirent64 before its name: d_ino (8),
// d_off (8), d_reclen (2), d_type (1).
const direntHeader = 19

// statMode converts st_mode's permission and special bits.
func statMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func readDir(path string) ([]DirEntry, error) {
	fd, err := open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 32<<10)
	var entries []DirEntry
	for {
		var n int
		err := ignoringEINTR(func() (err error) { n, err = syscall.ReadDirent(fd, buf); return err })
		if err != nil {
			return nil, &fs.PathError{Op: "getdents", Path: path, Err: err}
		}
		if n <= 0 {
			return entries, nil
		}
		for b := buf[:n]; len(b) >= direntHeader; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < direntHeader || reclen > len(b) {
				return nil, &fs.PathError{Op: "getdents", Path: path, Err: syscall.EIO}
			}
			name := b[direntHeader:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			typ, known := direntType(b[18])
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			e := DirEntry{Name: string(name), Type: typ}
			if !known {
				fi, err := os.Lstat(filepath.Join(path, e.Name))
				if err != nil {
					return nil, err
				}
				e.Type = fi.Mode().Type()
			}
			entries = append(entries, e)
		}
	}
}

// direntType maps d_type to fs.FileMode type bits; DT_UNKNOWN (some file
// systems) is not known, and the entry is lstat'ed instead.
func direntType(t byte) (fs.FileMode, bool) {
	switch t {
	case syscall.DT_REG:
		return 0, true
	case syscall.DT_DIR:
		return fs.ModeDir, true
	case syscall.DT_LNK:
		return fs.ModeSymlink, true
	case syscall.DT_FIFO:
		return fs.ModeNamedPipe, true
	case syscall.DT_SOCK:
		return fs.ModeSocket, true
	case syscall.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice, true
	case syscall.DT_BLK:
		return fs.ModeDevice, true
	}
	return 0, false
}
