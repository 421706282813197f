//go:build !linux

package nar

import (
	"io"
	"os"
)

func openRegular(path string) (*regularFile, error) {
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
	return &regularFile{
		size:       st.Size(),
		executable: st.Mode()&0o100 != 0,
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

func readDir(path string) ([]dirEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	entries := make([]dirEntry, len(des))
	for i, de := range des {
		entries[i] = dirEntry{name: de.Name(), typ: de.Type(), known: true}
	}
	return entries, nil
}
