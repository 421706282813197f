package status

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/journal"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/testenv"
)

const toml = "name = \"demo\"\n[environments.staging]\nreleases = \"s3://rel\"\nsigning_key = \"keys/staging.key\"\nrelease_key = \"keys/release.key\"\ncache = \"s3://cache?secret-key=keys/cache.key\"\n"

// fixture is a committed project; build writes release/ and build.json for
// HEAD with the files given (path under release/ → content).
type fixture struct {
	t    *testing.T
	r    *testenv.GitRepo
	head string
}

func (f *fixture) rel(p string) string {
	return filepath.Join(f.r.Dir, "release", filepath.FromSlash(p))
}

func (f *fixture) write(p, content string, mode os.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) build(files map[string]string, images ...artifacts.Image) {
	f.t.Helper()
	for p, c := range files {
		f.write(f.rel(p), c, 0o644)
	}
	rec := &artifacts.Record{Name: "demo", Version: "2.93.0", Major: "2.93", Profile: "all", Target: "all", Commit: f.head,
		VersionDir: "artifacts/demo/demo-2.93.0", Images: images}
	for _, top := range []string{"artifacts", "manual", "images"} {
		files, err := artifacts.RecordTree(filepath.Join(f.r.Dir, "release"), top)
		if err != nil && !os.IsNotExist(err) {
			f.t.Fatal(err)
		}
		rec.Files = append(rec.Files, files...)
	}
	if err := rec.Save(filepath.Join(f.r.Dir, "release")); err != nil {
		f.t.Fatal(err)
	}
}

// journal writes entries (stamped with release and time) to ENV.journal.
func (f *fixture) journal(env, release string, at time.Time, entries ...journal.Entry) {
	f.t.Helper()
	p := f.rel("state/" + env + ".journal")
	os.MkdirAll(filepath.Dir(p), 0o755)
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	for i, e := range entries {
		e.Release, e.Time = release, at.Add(time.Duration(i)*time.Second)
		b, _ := json.Marshal(e)
		fh.Write(append(b, '\n'))
	}
}

func env(st *Status, name string) Environment {
	for _, e := range st.Environments {
		if e.Name == name {
			return e
		}
	}
	return Environment{}
}

func TestCollect(t *testing.T) {
	big := strings.Repeat("x", HashLimit+1)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tot := &plan.Totals{Objects: 3, Send: 3, SendBytes: 300}
	tests := []struct {
		name  string
		setup func(f *fixture)
		check func(t *testing.T, st *Status)
	}{
		{name: "nothing built or published", setup: func(f *fixture) {}, check: func(t *testing.T, st *Status) {
			a := st.Artifacts
			if a.Built || a.Matches || !strings.Contains(a.RecordNote, "releng build") {
				t.Errorf("artifacts = %+v", a)
			}
			if st.Version != "2.93.0" || st.Major != "2.93" || st.Prerelease || st.Git.Branch != "main" || !st.Git.Clean || st.Git.TagElsewhere {
				t.Errorf("status = %+v", st)
			}
			if len(st.Environments) != 2 {
				t.Fatalf("environments = %+v", st.Environments)
			}
			l := env(st, "local")
			if !l.BuiltIn || !l.Default || l.Run != "idle" || len(l.Releases) != 0 || l.Lock.Held || l.Lock.PID != 0 {
				t.Errorf("local = %+v", l)
			}
			if len(l.Keys) != 1 || l.Keys[0].State != "missing" || l.Keys[0].Note == "" || l.SigningKeyPresent {
				t.Errorf("local keys = %+v", l.Keys)
			}
		}},
		{name: "built, matching", setup: func(f *fixture) {
			f.build(map[string]string{"artifacts/demo/demo-2.93.0/a.tar.gz": "aaa", "manual/index.html": "<p>", "artifacts/demo/demo-2.93.0/big": big},
				artifacts.Image{Name: "demo", System: "x86_64-linux", Layout: "images/demo-x86_64-linux", Manifest: "sha256:00"})
		}, check: func(t *testing.T, st *Status) {
			a := st.Artifacts
			if !a.Built || !a.Matches || !a.AtHead || !a.CurrentVersion || a.Files != 3 || a.Hashed != 2 || a.Bytes != int64(len(big)+6) {
				t.Errorf("artifacts = %+v", a)
			}
			if len(a.Images) != 1 || a.Images[0].Present || !a.Images[0].Recorded {
				t.Errorf("images = %+v", a.Images)
			}
		}},
		{name: "release/ changed after the build", setup: func(f *fixture) {
			f.build(map[string]string{"artifacts/a": "aaa", "artifacts/b": "bbb", "artifacts/c": "ccc", "artifacts/big": big,
				"images/demo-aarch64-linux/index.json": "{}"})
			f.write(f.rel("artifacts/a"), "aaaa", 0o644)                 // size
			f.write(f.rel("artifacts/b"), "BBB", 0o644)                  // small: hashed
			f.write(f.rel("artifacts/big"), strings.ToUpper(big), 0o644) // big: sizes only
			os.Remove(f.rel("artifacts/c"))
			f.write(f.rel("manual/extra.html"), "x", 0o644)
			f.r.Write("new", "x")
			f.r.CommitAll("after the build")
		}, check: func(t *testing.T, st *Status) {
			a := st.Artifacts
			want := map[string]string{"artifacts/a": "size 4, recorded 3", "artifacts/b": "sha256 ", "artifacts/c": "missing", "manual/extra.html": "not in build.json"}
			if a.Matches || a.AtHead || len(a.Problems) != len(want) {
				t.Errorf("artifacts = %+v", a)
			}
			for _, pr := range a.Problems {
				if !strings.HasPrefix(pr.What, want[pr.Path]) || want[pr.Path] == "" {
					t.Errorf("problem %+v, want %q", pr, want[pr.Path])
				}
			}
			if len(a.Images) != 1 || !a.Images[0].Present || a.Images[0].Recorded || a.Images[0].Layout != "images/demo-aarch64-linux" {
				t.Errorf("images = %+v", a.Images)
			}
		}},
		{name: "journal: an earlier release done, this build interrupted, lock left by a killed run", setup: func(f *fixture) {
			f.build(map[string]string{"artifacts/a": "aaa"})
			this := "demo 2.93.0 " + f.head
			f.journal("staging", "demo 2.92.0 0123456789ab", t0,
				journal.Entry{Kind: "plan", Step: "releases", Plan: tot}, journal.Entry{Kind: "object", Step: "releases", Key: "s3://rel/x", Size: 10},
				journal.Entry{Kind: "step", Step: "releases"})
			f.journal("staging", this, t0.Add(time.Hour),
				journal.Entry{Kind: "plan", Step: "cache", Plan: tot}, journal.Entry{Kind: "object", Step: "cache", Key: "s3://cache/a", Size: 100},
				journal.Entry{Kind: "step", Step: "cache"},
				journal.Entry{Kind: "plan", Step: "releases", Plan: tot}, journal.Entry{Kind: "object", Step: "releases", Key: "s3://rel/y", Size: 100})
			host, _ := os.Hostname()
			f.write(f.rel("state/staging.lock"), `{"pid":1073741824,"host":"`+host+`","since":"2025-03-01T13:00:00Z","command":"upload","flock":true}`+"\n", 0o644)
		}, check: func(t *testing.T, st *Status) {
			s := env(st, "staging")
			if s.Run != "interrupted" || s.Lock.Held || s.Lock.PID != 1<<30 || s.Lock.Command != "upload" || s.Lock.Since == nil {
				t.Errorf("staging run %q lock %+v", s.Run, s.Lock)
			}
			if len(s.Releases) != 2 {
				t.Fatalf("releases = %+v", s.Releases)
			}
			cur, old := s.Releases[0], s.Releases[1]
			if !cur.Built || cur.Version != "2.93.0" || strings.Join(cur.Steps, ",") != "cache" || cur.Objects != 2 ||
				strings.Join(cur.Unfinished, ",") != "releases" || !cur.Last.Equal(t0.Add(time.Hour+4*time.Second)) || !cur.First.Equal(t0.Add(time.Hour)) {
				t.Errorf("this build = %+v", cur)
			}
			if old.Built || old.Version != "2.92.0" || old.Commit != "0123456789ab" || len(old.Unfinished) != 0 || old.Objects != 1 {
				t.Errorf("earlier = %+v", old)
			}
			if strings.Join(s.PublishedSteps, ",") != "cache" || s.PublishedObjects != 2 || len(s.Progress) != 2 || s.Progress[1].Sent != 1 {
				t.Errorf("published for the build: %v %d %+v", s.PublishedSteps, s.PublishedObjects, s.Progress)
			}
			if l := env(st, "local"); l.Run != "idle" || len(l.Releases) != 0 {
				t.Errorf("local = %+v", l)
			}
		}},
		{name: "lock held", setup: func(f *fixture) {
			l, err := journal.Acquire(f.rel("state/staging.lock"), "upload")
			if err != nil {
				f.t.Fatal(err)
			}
			f.t.Cleanup(func() { l.Release() })
		}, check: func(t *testing.T, st *Status) {
			if s := env(st, "staging"); s.Run != "running" || !s.Lock.Held || s.Lock.PID != os.Getpid() {
				t.Errorf("staging = %+v", s)
			}
		}},
		{name: "key files: unsafe, ok, missing", setup: func(f *fixture) {
			f.write(filepath.Join(f.r.Dir, "keys/staging.key"), "k:x", 0o640)
			f.write(filepath.Join(f.r.Dir, "keys/release.key"), "k", 0o600)
			f.write(filepath.Join(f.r.Dir, "release/local/signing.key"), "k:x", 0o600)
		}, check: func(t *testing.T, st *Status) {
			s := env(st, "staging")
			if len(s.Keys) != 3 || s.Keys[0].Role != "signing_key" || s.Keys[0].State != "unsafe" || s.Keys[0].Mode != "0640" || !s.SigningKeyPresent ||
				s.Keys[1].Role != "release_key" || s.Keys[1].State != "ok" || s.Keys[1].Mode != "0600" ||
				s.Keys[2].Role != "cache secret-key" || s.Keys[2].Path != "keys/cache.key" || s.Keys[2].State != "missing" {
				t.Errorf("staging keys = %+v", s.Keys)
			}
			if l := env(st, "local"); l.Keys[0].State != "ok" || l.Keys[0].Note != "" {
				t.Errorf("local keys = %+v", l.Keys)
			}
		}},
		{name: "tag elsewhere, dirty tree", setup: func(f *fixture) {
			f.r.Git("tag", "2.93.0")
			f.r.Write("more", "x")
			f.r.CommitAll("after the tag")
			f.r.Write("more", "y")
		}, check: func(t *testing.T, st *Status) {
			if g := st.Git; !g.TagElsewhere || g.OnTag || g.Clean || g.Changed != 1 {
				t.Errorf("git = %+v", g)
			}
		}},
		{name: "journal too large is reported", setup: func(f *fixture) {
			os.MkdirAll(f.rel("state"), 0o755)
			os.Symlink("/dev/zero", f.rel("state/staging.journal"))
		}, check: func(t *testing.T, st *Status) {
			if s := env(st, "staging"); !strings.Contains(s.JournalNote, "staging.journal") || len(s.Releases) != 0 {
				t.Errorf("staging = %+v", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.NewGitRepo(t)
			r.Write("releng.toml", toml)
			r.Write("version.json", `{"version": "2.93.0", "official_release": false, "release_name": "Bici Bici"}`+"\n")
			f := &fixture{t: t, r: r, head: r.CommitAll("initial")}
			tc.setup(f)
			p, err := project.Open(project.Options{Dir: r.Dir})
			if err != nil {
				t.Fatal(err)
			}
			st, err := Collect(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, st)
		})
	}
}
