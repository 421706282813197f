package notes

import (
	"path/filepath"
	"testing"
)

// BenchmarkRender2920 is `releng notes render` on the fragments of Lix
// 2.92.0 minus process start-up: read the authors file and the directory,
// parse, check and render every fragment.
func BenchmarkRender2920(b *testing.B) {
	manual, _ := filepath.Abs(filepath.Join("testdata", "fixtures", "lix-2.92.0", "input", "doc", "manual"))
	s := settings(b, gen2592[0], gen2592[1], gen2592[2])
	for b.Loop() {
		a, err := LoadAuthors(testRoot, filepath.Join(manual, "change-authors.yml"), "change-authors.yml", s.ProfileKinds())
		if err != nil {
			b.Fatal(err)
		}
		d := ReadDir(testRoot, filepath.Join(manual, "rl-next"), "rl-next", true)
		out, _, err := Render(&Input{Dirs: []*Dir{d}, Settings: s, Authors: a})
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}
