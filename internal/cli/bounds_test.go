package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/testenv"
)

// Bounds of a command reading an input that points at /dev/zero or a huge
// file (the safety issue: `ln -sf /dev/zero version.json; releng status`
// once grew to 24 GB).
const (
	maxRSSKiB   = 100 << 10 // 100 MiB
	maxWallTime = 10 * time.Second
	hugeInput   = 300 << 20
	gnuTime     = "/usr/bin/time"
)

// TestInputsAreBounded runs the releng binary, in a process of its own so
// that GNU time measures its peak RSS, on a project one of whose inputs is
// a symbolic link to /dev/zero or a 300 MB (sparse) file inside it: each
// command must fail quickly, in little memory, with an error naming the
// file.
func TestInputsAreBounded(t *testing.T) {
	if out, err := exec.Command(gnuTime, "-f", "%M", "true").CombinedOutput(); err != nil {
		testenv.Missing(t, "GNU time ("+gnuTime+")", "apt-get install -y time")
	} else if _, err := strconv.Atoi(lastLine(string(out))); err != nil {
		testenv.Missing(t, "GNU time ("+gnuTime+" prints "+strings.TrimSpace(string(out))+")", "apt-get install -y time")
	}
	bin := buildReleng(t)
	inputs := []struct {
		name string
		file string // relative to the project
		args []string
		// reported: the command reports the problem and exits 0 (status
		// lists a broken build record as a note).
		reported bool
	}{
		{name: "version.json", file: "version.json", args: []string{"status"}},
		{name: "releng.toml", file: "releng.toml", args: []string{"status"}},
		{name: "build.json", file: "release/build.json", args: []string{"verify"}},
		{name: "build.json-status", file: "release/build.json", args: []string{"status"}, reported: true},
		{name: "fragment", file: "doc/manual/rl-next/huge.md", args: []string{"notes", "check"}},
	}
	kinds := []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"dev-zero", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"300MB", func(t *testing.T, path string) {
			// Sparse: it takes no disk space.
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, hugeInput); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, in := range inputs {
		for _, k := range kinds {
			t.Run(in.name+"/"+k.name, func(t *testing.T) {
				r := newProject(t, "name = \"demo\"\n")
				p := filepath.Join(r.Dir, filepath.FromSlash(in.file))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				k.make(t, p)
				res := runMeasured(t, bin, append([]string{"-C", r.Dir}, in.args...)...)
				t.Logf("releng %s: exit %d, %v, peak RSS %d KiB", strings.Join(in.args, " "), res.code, res.wall.Round(time.Millisecond), res.rssKiB)
				if res.wall > maxWallTime {
					t.Errorf("took %v (at most %v)", res.wall, maxWallTime)
				}
				if res.rssKiB > maxRSSKiB {
					t.Errorf("peak RSS %d KiB (at most %d KiB)", res.rssKiB, maxRSSKiB)
				}
				if in.reported {
					if !strings.Contains(res.stdout, in.file) {
						t.Errorf("the output does not name %s:\n%s\n%s", in.file, res.stdout, res.stderr)
					}
					return
				}
				if res.code == 0 {
					t.Errorf("exit 0, want non-zero:\n%s\n%s", res.stdout, res.stderr)
				}
				if !strings.Contains(res.stdout+res.stderr, in.file) {
					t.Errorf("the error does not name %s:\n%s\n%s", in.file, res.stdout, res.stderr)
				}
			})
		}
	}
}

// buildReleng builds the releng binary into a temporary directory.
func buildReleng(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "install Go")
	}
	bin := filepath.Join(t.TempDir(), "releng")
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/releng-project/releng/cmd/releng").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type measured struct {
	code           int
	wall           time.Duration
	rssKiB         int
	stdout, stderr string
}

// runMeasured runs bin under GNU time. The process's address space is
// capped at 4 GiB, and it is killed after a minute, so that a regression
// fails the test instead of the machine.
func runMeasured(t *testing.T, bin string, args ...string) measured {
	t.Helper()
	timeOut := filepath.Join(t.TempDir(), "time")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append([]string{"-f", "%M", "-o", timeOut, "sh", "-c", `ulimit -v 4194304 && exec "$0" "$@"`, bin}, args...)
	cmd := exec.CommandContext(ctx, gnuTime, argv...)
	cmd.Env = append(os.Environ(), testenv.GitEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	m := measured{wall: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		m.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", bin, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("releng %s did not end within a minute", strings.Join(args, " "))
	}
	data, err := os.ReadFile(timeOut)
	if err != nil {
		t.Fatal(err)
	}
	// GNU time may precede the figure with "Command exited with non-zero
	// status N".
	if m.rssKiB, err = strconv.Atoi(lastLine(string(data))); err != nil {
		t.Fatalf("GNU time printed %q", data)
	}
	return m
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
