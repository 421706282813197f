package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

// statusProject is a project with a staging environment on an S3 endpoint
// that counts connections and a credentials_command that would leave a
// file and fail; release/ holds a build, a journal and a lock left by a
// killed upload.
func statusProject(t *testing.T) (dir, marker string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	marker = filepath.Join(t.TempDir(), "credentials-ran")
	script := filepath.Join(t.TempDir(), "creds.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	r := newProject(t, "name = \"demo\"\ndefault_environment = \"staging\"\n[environments.staging]\nreleases = \"s3://rel\"\n"+
		"s3_endpoint = \""+endpoint+"\"\ncache = \"s3://cache?endpoint="+ln.Addr().String()+"&scheme=http\"\n"+
		"credentials_command = [\""+script+"\"]\nsigning_key = \"keys/staging.key\"\n")
	head := r.Git("rev-parse", "HEAD")
	r.Write("keys/staging.key", "staging-1:x")
	os.Chmod(filepath.Join(r.Dir, "keys/staging.key"), 0o644)
	r.Write("release/artifacts/demo/demo-2.93.0/demo.tar.gz", "tarball")
	r.Write("release/build.json", `{"name":"demo","version":"2.93.0","major":"2.93","profile":"all","target":"all","commit":"`+head+`",`+
		`"version_dir":"artifacts/demo/demo-2.93.0","artifacts":[{"path":"artifacts/demo/demo-2.93.0/demo.tar.gz","size":7,`+
		`"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}`)
	rel := "demo 2.93.0 " + head
	r.Write("release/state/staging.journal",
		`{"time":"2025-03-01T12:00:00Z","release":"`+rel+`","kind":"plan","step":"cache","plan":{"objects":2,"send":2,"send_bytes":2048,"present":0,"present_bytes":0,"delete":0}}`+"\n"+
			`{"time":"2025-03-01T12:00:01Z","release":"`+rel+`","kind":"object","step":"cache","key":"s3://cache/a","size":1024}`+"\n")
	host, _ := os.Hostname()
	r.Write("release/state/staging.lock", `{"pid":1073741824,"host":"`+host+`","since":"2025-03-01T12:00:00Z","command":"upload","flock":true}`+"\n")
	return r.Dir, marker, conns
}

// TestStatusReadsLocalStateOnly: status never runs credentials_command nor
// connects to an endpoint, in text or JSON.
func TestStatusReadsLocalStateOnly(t *testing.T) {
	dir, marker, conns := statusProject(t)
	for _, args := range [][]string{{"status"}, {"--json", "status"}, {"-v", "status"}} {
		out, errOut, code := run(t, append([]string{"-C", dir}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("status ran credentials_command")
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("status made %d connections to the environment's endpoint", n)
	}
}

func TestStatusText(t *testing.T) {
	dir, _, _ := statusProject(t)
	out, errOut, code := run(t, "-C", dir, "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tests := []struct{ what, re string }{
		{"version line", `(?m)^demo 2\.93\.0 \(major 2\.93\) "Bici Bici": not official, not a pre-release$`},
		{"git block", `(?m)^git\n  head +on branch main at [0-9a-f]{12}\n  tree +clean\n  tag 2\.93\.0 +not created yet$`},
		{"artifacts: the sha256 of a small file is checked", `(?m)^artifacts\n  build\.json +2\.93\.0 at [0-9a-f]{12}, profile all, target all\n  release/ +1 files, 7 B; 1 differ from build\.json:\n +artifacts/demo/demo-2\.93\.0/demo\.tar\.gz: sha256 `},
		{"environment heading", `(?m)^environment staging \(default\)$`},
		{"unsafe key", `(?m)^  signing key +keys/staging\.key: unsafe \(mode 0644\); commands that sign refuse it`},
		{"stale lock", `(?m)^  lock +free; left by upload, pid 1073741824 on [^,]+, since .*, which ended without releasing it$`},
		{"published", `(?m)^  published +2\.93\.0 \(this build\): no step done; 1 objects; last `},
		{"progress", `(?m)^ +cache: sent 1 of 2 planned \(1\.0 KiB of 2\.0 KiB\)$`},
		{"interrupted", "(?m)^  run +interrupted during cache: run `releng upload --environment staging` again to finish it$"},
		{"local", `(?m)^environment local \(built in\)\n  signing key +release/local/signing\.key: missing; generated on first upload\n  lock +free\n  published +nothing recorded in release/state/local\.journal$`},
	}
	for _, tc := range tests {
		if !regexp.MustCompile(tc.re).MatchString(out) {
			t.Errorf("%s: no match for %s in\n%s", tc.what, tc.re, out)
		}
	}
}

// TestStatusJSONShape: every key status --json prints is documented in
// docs/json.md's status section, and the sections are all there.
func TestStatusJSONShape(t *testing.T) {
	dir, _, _ := statusProject(t)
	out, errOut, code := run(t, "-C", dir, "--json", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	got := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				got[k] = true
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	md, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(md)[strings.Index(string(md), "## `releng status --json`"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	var undocumented []string
	for k := range got {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("keys not documented in docs/json.md: %v", undocumented)
	}
	for _, k := range []string{"git", "artifacts", "environments", "keys", "lock", "run", "releases", "unfinished_steps", "tag_elsewhere", "hashed_files", "problems"} {
		if !got[k] {
			t.Errorf("status --json lacks %q:\n%s", k, out)
		}
	}
	var st struct {
		Environments []struct {
			Name, Run string
			Lock      struct {
				Held bool
				PID  int
			}
			Keys []struct{ Role, State string }
		}
	}
	json.Unmarshal([]byte(out), &st)
	if len(st.Environments) != 2 || st.Environments[1].Name != "staging" || st.Environments[1].Run != "interrupted" ||
		st.Environments[1].Lock.Held || st.Environments[1].Lock.PID != 1<<30 || len(st.Environments[1].Keys) != 1 || st.Environments[1].Keys[0].State != "unsafe" {
		t.Errorf("environments = %+v", st.Environments)
	}
}
