package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/testenv"
)

// FuzzParse feeds arbitrary bytes to Parse, the reader of releng.toml.
// Every error is a *Error naming the file, with a line inside it (or
// none). A configuration it accepts is parsed the same way twice, names a
// default environment that exists, and every environment it lists can be
// looked up; its release directory is inside the project. Memory stays a
// small multiple of the file's size.
//
// Seeds: the example project's releng.toml, testdata/lix.releng.toml, and
// the corpus in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		filepath.Join("..", "example", "project", "releng.toml"),
		filepath.Join("testdata", "lix.releng.toml"),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name = \"p\"\n"))
	f.Add([]byte("name = \"p\"\n[environments.prod]\nreleases = \"s3://b/r\"\ncredentials_command = [\"get-keys\"]\n"))
	f.Add([]byte("name = \"p\"\nrelease_dir = \"../out\"\n"))
	f.Add([]byte("\xef\xbb\xbfname = \"p\"\n"))
	root := f.TempDir()
	file := filepath.Join(root, "releng.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		var c *Config
		var err error
		testenv.CheckAllocBytes(t, "Parse", 256*uint64(len(data))+4<<20, func() { c, err = Parse(data, file, root) })
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != file {
				t.Fatalf("the error is not a *config.Error naming the file: %#v", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; ce.Line < 0 || ce.Line > lines {
				t.Fatalf("the error is on line %d of %d: %v", ce.Line, lines, err)
			}
			return
		}
		if c.Path != file || c.Name == "" {
			t.Fatalf("accepted a configuration without a name, or for another file: %q %q", c.Path, c.Name)
		}
		again, err := Parse(data, file, root)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("parsed twice, the configuration differs (%v)", err)
		}
		if _, err := c.Environment(""); err != nil {
			t.Fatalf("the default environment: %v", err)
		}
		for _, n := range c.EnvironmentNames() {
			if e, err := c.Environment(n); err != nil || e == nil {
				t.Fatalf("environment %q: %v", n, err)
			}
		}
		if rel := c.Abs(c.ReleaseDir); !fsutil.Within(root, rel) || rel == root {
			t.Fatalf("release_dir %q resolves to %s, outside the project %s", c.ReleaseDir, rel, root)
		}
	})
}
