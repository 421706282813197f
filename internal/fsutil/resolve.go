package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Resolve returns the absolute path p leads to once every symbolic link on
// it is followed, as the kernel would resolve it; components that do not
// exist yet are kept as written. p must be absolute. A symbolic link loop
// (more than 40 links) leaves the rest unresolved.
func Resolve(p string) string {
	hops := 0
	return resolve("/", splitPath(p), &hops)
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, string(filepath.Separator)) {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func resolve(cur string, comps []string, hops *int) string {
	for i, c := range comps {
		if c == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		st, err := os.Lstat(next)
		if err != nil {
			// Not there (yet): the rest is taken as written.
			return filepath.Clean(filepath.Join(append([]string{cur}, comps[i:]...)...))
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		*hops++
		target, err := os.Readlink(next)
		if err != nil || *hops > 40 {
			return filepath.Clean(filepath.Join(append([]string{next}, comps[i+1:]...)...))
		}
		base := cur
		if filepath.IsAbs(target) {
			base = "/"
		}
		cur = resolve(base, splitPath(target), hops)
	}
	return cur
}

// Exists reports whether something (even a dangling link) is at p.
func Exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
