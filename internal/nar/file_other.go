//go:build !linux

package nar

import (
	"io"
	"io/fs"
	"os"
)

func openRegular(path string) (*File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(fi, st) || !st.Mode().IsRegular() {
		f.Close()
		return nil, changedError(path)
	}
	return &File{
		Size: st.Size(),
		Mode: st.Mode() &^ fs.ModeType,
		read: func(p []byte) (int, error) {
			n, err := f.Read(p)
			if err == io.EOF {
				err = nil
			}
			return n, err
		},
		close: f.Close,
	}, nil
}

func readDir(path string) ([]DirEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	entries := make([]DirEntry, len(des))
	for i, de := range des {
		entries[i] = DirEntry{Name: de.Name(), Type: de.Type()}
	}
	return entries, nil
}
