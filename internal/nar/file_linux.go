package nar

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"syscall"
)

// On Linux, files are read with plain system calls: os.Open would make
// four fcntl calls and an epoll registration per file, more than the
// reading itself costs for most files of a store path. The types of a
// directory's entries come from getdents (d_type), so no lstat is needed
// per entry either.

func openRegular(path string) (*regularFile, error) {
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
	return &regularFile{
		size:       st.Size,
		executable: st.Mode&0o100 != 0,
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

func readDir(path string) ([]dirEntry, error) {
	fd, err := open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 32<<10)
	var entries []dirEntry
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
			entries = append(entries, dirEntry{name: string(name), typ: typ, known: known})
		}
	}
}

// direntType maps d_type to fs.FileMode type bits; DT_UNKNOWN (some file
// systems) is not known, and the entry is lstat'ed.
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
