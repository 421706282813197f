// Package testenv starts the real components releng's tests talk to (SPEC
// §13): MinIO, the Docker registry, Nix without a daemon, and git
// repositories with a bare remote, on 127.0.0.1 with random ports and temp
// directories, stopped when the test ends. A missing component skips the
// test, saying which, unless RELENG_REQUIRE_INTEGRATION=1 (CI), where it
// fails it.
package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RequireIntegration reports whether a missing component must fail tests.
func RequireIntegration() bool { return os.Getenv("RELENG_REQUIRE_INTEGRATION") == "1" }

// Missing skips t (or fails it under RELENG_REQUIRE_INTEGRATION=1) because
// component is not available; how says how to install it.
func Missing(t testing.TB, component, how string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available (%s); install it with: %s", component, t.Name(), how)
	if RequireIntegration() {
		t.Fatal("RELENG_REQUIRE_INTEGRATION=1: " + msg)
	}
	t.Skip(msg)
}

// LookPath finds a program on PATH or skips/fails t naming it.
func LookPath(t testing.TB, program, how string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program, how)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess starts cmd with its output in a log file under t's temp dir
// and stops it (SIGKILL, then wait) when t ends.
func startProcess(t testing.TB, cmd *exec.Cmd, name string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	return logPath
}

// waitHTTP polls url until it answers with want, or fails t after timeout.
func waitHTTP(t testing.TB, url string, want int, timeout time.Duration, logPath string) {
	t.Helper()
	waitHTTPWith(t, &http.Client{Timeout: time.Second}, url, want, timeout, logPath)
}

// waitHTTPWith is waitHTTP with the client's transport (e.g. one that
// trusts a test certificate).
func waitHTTPWith(t testing.TB, client *http.Client, url string, want int, timeout time.Duration, logPath string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("%s did not become ready in %s (last error %v); its log:\n%s", url, timeout, err, tailBytes(out, 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}
