package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TooLargeError says an input is over its size cap.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %s, the most releng reads from such a file; check that it is the right file", e.Path, FormatSize(e.Limit))
}

// NotRegularError says an input is a device, FIFO, socket or directory.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s: not a regular file (%s); releng reads only regular files here", e.Path, DescribeMode(e.Mode))
}

// EscapeError says a path inside the project leads outside it through a
// symbolic link (or "..").
type EscapeError struct {
	Path string // the path asked for
	Link string // the symbolic link that leaves the root ("" when unknown)
	Root string
}

func (e *EscapeError) Error() string {
	if e.Link != "" {
		return fmt.Sprintf("%s: is a symbolic link that leads outside the project root %s; releng reads only files inside the project (replace the link with the file itself)", e.Link, e.Root)
	}
	return fmt.Sprintf("%s: is outside the project root %s; releng reads only files inside the project", e.Path, e.Root)
}

// ReadFile reads the regular file at path, refusing anything larger than
// limit bytes (checked while reading, so /dev/zero or a growing file cannot
// exhaust memory) and anything that is not a regular file.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpened(f, path, limit)
}

// ReadFileIn reads the regular file at path, which must lie inside root
// (path may be absolute or relative to root). Symbolic links are followed
// only while they stay inside root; one that leaves it is an *EscapeError
// naming the link, and nothing of its target is read.
func ReadFileIn(root, path string, limit int64) ([]byte, error) {
	f, err := OpenIn(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpened(f, path, limit)
}

// OpenIn opens the file at path for reading without leaving root: it is
// resolved through an os.Root (component by component, symbolic links
// followed only inside root), and it must be a regular file.
func OpenIn(root, path string) (*os.File, error) {
	f, err := openBeneath(root, path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	return f, nil
}

// RelIn returns path relative to root, refusing a path that is lexically
// outside root ("../x", or an absolute path elsewhere).
func RelIn(root, path string) (string, error) {
	p := path
	if filepath.IsAbs(p) {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return "", &EscapeError{Path: path, Root: root}
		}
		p = r
	}
	p = filepath.Clean(p)
	if p == ".." || strings.HasPrefix(p, ".."+string(filepath.Separator)) || filepath.IsAbs(p) {
		return "", &EscapeError{Path: path, Root: root}
	}
	return p, nil
}

// isEscape recognises os.Root's refusal of a path that leaves the root.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// findEscapingLink names the first symbolic link on rel (inside root) whose
// resolution leaves root, for the error message.
func findEscapingLink(root, rel string) string {
	parts := strings.Split(rel, string(filepath.Separator))
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		rootReal = root
	}
	for i := range parts {
		p := filepath.Join(root, filepath.Join(parts[:i+1]...))
		st, err := os.Lstat(p)
		if err != nil {
			return ""
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil || !Within(rootReal, real) {
			return p
		}
	}
	return ""
}

// Within reports whether path is root or lies below it (both cleaned,
// absolute; no symbolic links are resolved).
func Within(root, path string) bool {
	if path == root {
		return true
	}
	r := root
	if !strings.HasSuffix(r, string(filepath.Separator)) {
		r += string(filepath.Separator)
	}
	return strings.HasPrefix(path, r)
}

func readOpened(f *os.File, path string, limit int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	if st.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return ReadAllLimited(f, path, limit)
}

// ReadAllLimited reads r to its end, failing with a *TooLargeError naming
// what once more than limit bytes arrive.
func ReadAllLimited(r io.Reader, what string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: what, Limit: limit}
	}
	return data, nil
}

// DescribeMode names the type of a file for an error message: "a
// directory", "a named pipe", "a symbolic link", ….
func DescribeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return m.Type().String()
}

// FormatSize prints a byte count in binary units (as the caps are chosen).
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReadDirIn lists the directory dir, which must lie inside root: symbolic
// links on the way are followed only inside root (one leading out is an
// *EscapeError naming it).
func ReadDirIn(root, dir string) ([]os.DirEntry, error) {
	f, err := openBeneath(root, dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// openBeneath opens path (absolute, or relative to root) through an
// os.Root: symbolic links are followed only while they stay inside root;
// one that leads out is an *EscapeError naming it.
func openBeneath(root, path string) (*os.File, error) {
	rel, err := RelIn(root, path)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	case isEscape(err):
		return nil, &EscapeError{Path: path, Link: findEscapingLink(root, rel), Root: root}
	}
	return nil, err
}
