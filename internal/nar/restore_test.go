package nar

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// releng itself only lists NARs ([ReadListing]); the tests also read the
// contents of files ([Reader.Read]) and unpack NARs ([Restore]), so those
// live here.

// Read reads from the contents of the current regular file. It returns
// io.EOF at the end of the contents, and at once for other node types.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.inFile || r.remaining == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.br.Read(p)
	r.off += uint64(n)
	r.remaining -= uint64(n)
	if err == io.EOF && r.remaining > 0 {
		err = r.readErr(io.ErrUnexpectedEOF)
		r.err = err
	} else if err != nil && err != io.EOF {
		err = r.readErr(err)
		r.err = err
	} else {
		err = nil
	}
	return n, err
}

// Restore unpacks the NAR read from r at dir, which must not exist (its
// parent must). The root of the NAR becomes dir itself: a directory, a
// file or a symbolic link. Files are created with mode 0644, or 0755 when
// executable, directories with 0755 (both less the umask).
//
// Every entry is created through an [os.Root] opened on dir, with
// O_EXCL for files, so nothing is written outside dir even if the file
// system aliases names (case folding, Unicode normalisation): such a
// collision is an error. On error, whatever was created is removed.
func Restore(r io.Reader, dir string) (err error) {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("nar: restoring into %s: it already exists", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("nar: %w", err)
	}
	nr := NewReader(r)
	h, err := nr.Next()
	if err != nil {
		return err
	}
	created := false
	defer func() {
		if err != nil && created {
			os.RemoveAll(dir)
		}
	}()
	switch h.Type {
	case TypeRegular:
		f, err := os.OpenFile(dir, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode(h))
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		created = true
		if err := copyContents(f, nr, dir); err != nil {
			return err
		}
	case TypeSymlink:
		if err := os.Symlink(h.Target, dir); err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		created = true
	case TypeDirectory:
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		created = true
		root, err := os.OpenRoot(dir)
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		defer root.Close()
		if err := restoreEntries(nr, root, dir); err != nil {
			return err
		}
	}
	if _, err := nr.Next(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("nar: restoring into %s: archive continues after its root", dir)
		}
		return err
	}
	return nil
}

func restoreEntries(nr *Reader, root *os.Root, dir string) error {
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// Names are validated by the Reader: no "", ".", ".." or "/".
		rel := strings.TrimPrefix(h.Path, "/")
		where := dir + h.Path
		switch h.Type {
		case TypeDirectory:
			if err := root.Mkdir(rel, 0o755); err != nil {
				return fmt.Errorf("nar: restoring %s: %w", where, err)
			}
		case TypeSymlink:
			if err := root.Symlink(h.Target, rel); err != nil {
				return fmt.Errorf("nar: restoring %s: %w", where, err)
			}
		case TypeRegular:
			f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode(h))
			if err != nil {
				return fmt.Errorf("nar: restoring %s: %w", where, err)
			}
			if err := copyContents(f, nr, where); err != nil {
				return err
			}
		}
	}
}

func fileMode(h *Header) fs.FileMode {
	if h.Executable {
		return 0o755
	}
	return 0o644
}

func copyContents(f *os.File, nr *Reader, where string) error {
	_, err := io.Copy(f, nr)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("nar: restoring %s: %w", where, cerr)
	}
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			return err
		}
		return fmt.Errorf("nar: restoring %s: %w", where, err)
	}
	return nil
}
