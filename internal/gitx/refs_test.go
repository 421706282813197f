package gitx

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

func TestValidateRefName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"2.93.0", true},
		{"release-2.93", true},
		{"stable/2.93", true},
		{"2.90.0-beta.1", true},
		{"v1.0+local.7", true},
		{"", false},
		{"--upload-pack=x", false},
		{"-x", false},
		{"2.93.0; rm -rf /", false},
		{"$(id)", false},
		{"a`id`", false},
		{"a b", false},
		{"a\nb", false},
		{"a..b", false},
		{"a@{1}", false},
		{"a~1", false},
		{"a^", false},
		{"a:b", false},
		{"a?", false},
		{"a*", false},
		{"a[", false},
		{"a\\b", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"a/.b", false},
		{"a/-b", false},
		{".a", false},
		{"a.", false},
		{"a.lock", false},
		{"HEAD", false},
		{"@", false},
		{strings.Repeat("a", 201), false},
	}
	for _, tc := range tests {
		err := ValidateRefName("tag", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRefName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		var re *RefNameError
		if err != nil && !errors.As(err, &re) {
			t.Errorf("ValidateRefName(%q): error %T, want *RefNameError", tc.name, err)
		}
	}
}

func TestCheckRefName(t *testing.T) {
	testenv.LookPath(t, "git", "apt-get install -y git")
	ctx := context.Background()
	for _, kind := range []string{"tag", "branch", "remote"} {
		if err := CheckRefName(ctx, kind, "release-2.93"); err != nil {
			t.Errorf("%s release-2.93: %v", kind, err)
		}
		for _, bad := range []string{"--upload-pack=x", "a..b", "a.lock", "a b"} {
			if err := CheckRefName(ctx, kind, bad); err == nil {
				t.Errorf("%s %q accepted", kind, bad)
			}
		}
	}
}

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"ssh://git@gerrit.lix.systems:2022/lix", true},
		{"https://git.lix.systems/lix-project/lix", true},
		{"git@example.org:lix.git", true},
		{"../releng-target", true},
		{"/srv/git/lix.git", true},
		{"", false},
		{"  ", false},
		{"--upload-pack=x", false},
		{"-oProxyCommand=x", false},
		{"ext::sh -c touch% /tmp/x", false},
		{"EXT::sh", false},
		{"fd::3", false},
		{"ssh://host/a\nb", false},
	}
	for _, tc := range tests {
		if err := ValidateURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestRemotesAndLsRemote(t *testing.T) {
	ctx := context.Background()
	r := testenv.NewGitRepo(t)
	r.Write("a", "a\n")
	head := r.CommitAll("a")
	r.Git("remote", "add", "gerrit", "ssh://me@gerrit.example.org:2022/lix")
	r.Git("push", "-q", "origin", "main")
	g := &Repo{Dir: r.Dir, Env: testenv.GitEnv}

	rs, err := g.Remotes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"origin": r.Remote, "gerrit": "ssh://me@gerrit.example.org:2022/lix"}
	if len(rs) != 4 {
		t.Errorf("remotes %+v, want 4 lines", rs)
	}
	for _, rm := range rs {
		if want[rm.Name] != rm.URL || (rm.Direction != "fetch" && rm.Direction != "push") {
			t.Errorf("remote %+v", rm)
		}
	}
	if ok, err := g.HasRemote(ctx, "origin"); !ok || err != nil {
		t.Errorf("HasRemote(origin) = %v, %v", ok, err)
	}
	if ok, _ := g.HasRemote(ctx, "upstream"); ok {
		t.Errorf("HasRemote(upstream) = true")
	}

	refs, err := g.LsRemote(ctx, "origin", "refs/heads/main", "refs/tags/nope")
	if err != nil || refs["refs/heads/main"] != head || len(refs) != 1 {
		t.Errorf("LsRemote = %v, %v", refs, err)
	}
	if _, err := g.LsRemote(ctx, "--upload-pack=touch pwned"); err == nil || !strings.Contains(err.Error(), "option") {
		t.Errorf("LsRemote with an option as remote: %v", err)
	}
	if err := g.Push(ctx, "-x", []string{"main"}); err == nil {
		t.Errorf("Push with an option as remote succeeded")
	}
}

func TestErrorShowsArgsReadably(t *testing.T) {
	e := &Error{Args: []string{"commit", "-m", "release: 2.93.0 \"x\"\n\nRelease produced with releng", "--", "version.json"}, Stderr: "hook says no\n", Err: errors.New("exit status 1")}
	msg := e.Error()
	for _, want := range []string{"git commit -m", `release: 2.93.0 \"x\"…`, "-- version.json: exit status 1", "\nhook says no"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}
