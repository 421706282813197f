//go:build linux

package dir

import (
	"io/fs"
	"syscall"
)

// fileID returns the inode number and change time of fi, which together
// with size and mtime tell whether a metadata record still describes the
// file.
func fileID(fi fs.FileInfo) (ino uint64, ctimeNs int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Ctim.Nano()
	}
	return 0, 0
}
