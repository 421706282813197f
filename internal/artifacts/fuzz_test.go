package artifacts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/nixbuild"
	"github.com/releng-project/releng/internal/testenv"
)

// seedRecord is a build.json as `releng build` of the example project
// writes it: jobs, manifest, files, a native image.
func seedRecord() *Record {
	const vdir = "artifacts/hello/hello-1.0.0"
	sum := strings.Repeat("ab", 32)
	return &Record{
		Name: "hello", Version: "1.0.0", Major: "1.0", OfficialRelease: true, Profile: "all", Target: "all",
		Commit: "0123456789abcdef0123456789abcdef01234567",
		Jobs: []nixbuild.Job{{Attr: "build.x86_64-linux", Name: "hello-1.0.0", System: "x86_64-linux",
			DrvPath: "/nix/store/7bbnap4gignibz9xbf85brhqkmqy453y-hello-1.0.0.drv",
			Outputs: map[string]string{"out": "/nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-hello-1.0.0"}}},
		Manifest:   map[string]string{"x86_64-linux": "/nix/store/cc80vl87cmfw7c6crl5rvbshns4sp5kr-hello-1.0.0"},
		VersionDir: vdir,
		Files: []File{
			{Path: vdir + "/hello-1.0.0.tar.xz", Size: 1234, SHA256: sum},
			{Path: vdir + "/hello-1.0.0-docker-image-x86_64-linux.tar.gz", Size: 99, SHA256: sum},
			{Path: "manual/index.html", Size: 0, SHA256: sum},
		},
		Images: []Image{{Name: "hello", System: "x86_64-linux", Layout: "images/hello-x86_64-linux",
			Manifest: "sha256:" + sum, Archive: vdir + "/hello-1.0.0-docker-image-x86_64-linux.tar.gz"}},
	}
}

// FuzzLoad feeds arbitrary bytes to Load as release/build.json. An error
// names the file. A record it accepts lists only paths inside the release
// directory (upload reads and publishes them), and saving it gives a file
// that loads to the same record. Memory stays a small multiple of the
// file's size.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	if err := seedRecord().Save(dir); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(strings.Replace(string(data), "manual/index.html", "../../../home/u/.ssh/id_ed25519", 1)))
	f.Add([]byte(strings.Replace(string(data), `"version_dir": "artifacts/hello/hello-1.0.0"`, `"version_dir": "/etc"`, 1)))
	f.Add([]byte(`{"artifacts":null,"images":[{}]}`))
	f.Add([]byte(`{"version_dir":"a","artifacts":[{"path":"a/b","size":-1,"sha256":""}]}`))
	file := filepath.Join(dir, RecordFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var r *Record
		var err error
		testenv.CheckAllocBytes(t, "Load", 64*uint64(len(data))+256<<10, func() { r, err = Load(dir) })
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		inside := func(p string) {
			if abs := filepath.Join(dir, filepath.FromSlash(p)); !fsutil.Within(dir, abs) || abs == dir {
				t.Fatalf("accepted %q, which is not inside the release directory", p)
			}
		}
		inside(r.VersionDir)
		for _, f := range r.Files {
			inside(f.Path)
		}
		for _, im := range r.Images {
			inside(im.Layout)
			if im.Archive != "" {
				inside(im.Archive)
			}
		}
		if err := r.Save(dir); err != nil {
			t.Fatalf("saving what loaded: %v", err)
		}
		again, err := Load(dir)
		if err != nil || !reflect.DeepEqual(r, again) {
			t.Fatalf("saved and loaded again, the record differs (%v):\n%+v\n%+v", err, r, again)
		}
	})
}

// Found writing FuzzLoad: a build.json listing files outside the release
// directory was accepted, and upload would have published them.
func TestLoadRefusesPathsOutside(t *testing.T) {
	for _, mutate := range []func(*Record){
		func(r *Record) { r.Files[2].Path = "../../../home/u/.ssh/id_ed25519" },
		func(r *Record) { r.Files[0].Path = r.VersionDir + "/../../../../etc/passwd" },
		func(r *Record) { r.Files[0].Path = "/etc/passwd" },
		func(r *Record) { r.VersionDir = "/etc" },
		func(r *Record) { r.VersionDir = "." },
		func(r *Record) { r.Images[0].Layout = "../elsewhere" },
		func(r *Record) { r.Images[0].Archive = "a/./b" },
		func(r *Record) { r.Files[0].SHA256 = "AB" },
		func(r *Record) { r.Files[0].Size = -1 },
	} {
		dir := t.TempDir()
		r := seedRecord()
		mutate(r)
		if err := r.Save(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "corrupt build record") {
			t.Errorf("%+v: err = %v", r, err)
		}
	}
	dir := t.TempDir()
	if err := seedRecord().Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}
