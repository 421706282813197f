package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lock tests run real processes: the test binary re-executed as a child
// (TestLockChild, with lockChildEnv set), so that every would-be holder is a
// process of its own, as two releng runs are.

const (
	lockChildEnv = "RELENG_LOCK_TEST_CHILD" // the child's part: race, hold or idle
	lockPathEnv  = "RELENG_LOCK_TEST_PATH"  // the lock file
	lockMarkEnv  = "RELENG_LOCK_TEST_MARK"  // race: the file a holder creates with O_EXCL
	lockLogEnv   = "RELENG_LOCK_TEST_LOG"   // race: the holders' log (O_APPEND)
)

// The exit statuses of a race child.
const (
	raceAcquired = 0
	raceFailed   = 1
	raceDouble   = 2 // it held the lock while another holder did
	raceRefused  = 3 // a *HeldError
)

// TestLockChild is not a test of its own: the tests below run it as a child
// process.
func TestLockChild(t *testing.T) {
	part := os.Getenv(lockChildEnv)
	if part == "" {
		return
	}
	os.Exit(lockChild(part, os.Getenv(lockPathEnv)))
}

func lockChild(part, path string) int {
	switch part {
	case "race":
		// Ready; then wait for the barrier (EOF on stdin) to race the others.
		os.Stdout.Write([]byte{'r'})
		io.Copy(io.Discard, os.Stdin)
		return raceChild(path)
	case "hold":
		l, err := Acquire(path, "promote")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return raceFailed
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		if err := l.Release(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return raceFailed
		}
		return 0
	case "idle":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	return raceFailed
}

// raceChild tries the lock once. A holder proves it is alone: it creates the
// marker file exclusively (it exists while some holder holds the lock), logs
// its pid, holds for a few milliseconds, then removes the marker and
// releases.
func raceChild(path string) int {
	l, err := Acquire(path, "upload")
	var held *HeldError
	if errors.As(err, &held) {
		return raceRefused
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return raceFailed
	}
	mark := os.Getenv(lockMarkEnv)
	m, err := os.OpenFile(mark, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pid %d holds the lock, but so does another process: %v\n", os.Getpid(), err)
		return raceDouble
	}
	m.Close()
	log, err := os.OpenFile(os.Getenv(lockLogEnv), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintln(log, os.Getpid())
		err = log.Close()
	}
	time.Sleep(3 * time.Millisecond)
	if err := errors.Join(err, os.Remove(mark), l.Release()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return raceFailed
	}
	return raceAcquired
}

// TestLockStaleRace starts 8 processes together, 50 times, on a stale lock
// (the JSON of a dead pid on this host, no flock held, as an older releng
// or a killed one leaves it): every time, at least one takes it, and never
// two at once.
func TestLockStaleRace(t *testing.T) {
	const procs, trials = 8, 50
	dir := t.TempDir()
	p := filepath.Join(dir, "local.lock")
	stale := staleLock(t)
	start := time.Now()
	var acquired, refused, double int
	for trial := 0; trial < trials; trial++ {
		must(t, os.WriteFile(p, stale, 0o644))
		log := filepath.Join(dir, fmt.Sprintf("holders.%d", trial))
		codes, stderr := race(t, procs, []string{
			lockPathEnv + "=" + p,
			lockMarkEnv + "=" + filepath.Join(dir, "holder"),
			lockLogEnv + "=" + log,
		})
		got := 0
		for i, code := range codes {
			switch code {
			case raceAcquired:
				got++
			case raceRefused:
				refused++
			case raceDouble:
				double++
				t.Errorf("trial %d: two holders at once: %s", trial, stderr[i])
			default:
				t.Errorf("trial %d: child exit %d: %s", trial, code, stderr[i])
			}
		}
		acquired += got
		if got == 0 {
			t.Errorf("trial %d: no process took the stale lock", trial)
		}
		raw, _ := os.ReadFile(log)
		if n := strings.Count(string(raw), "\n"); n != got {
			t.Errorf("trial %d: %d holders logged, %d reported", trial, n, got)
		}
	}
	t.Logf("%d trials x %d processes: %d acquisitions, %d refusals, %d double holders, %s",
		trials, procs, acquired, refused, double, time.Since(start).Round(time.Millisecond))
}

// staleLock is a lock file as an older releng left it: the JSON of a pid
// that has ended, on this host.
func staleLock(t *testing.T) []byte {
	t.Helper()
	dead := exec.Command(os.Args[0], "-test.run=^$")
	must(t, dead.Run())
	host, _ := os.Hostname()
	data, err := json.Marshal(LockInfo{PID: dead.Process.Pid, Host: host, Since: time.Now().UTC(), Command: "upload"})
	must(t, err)
	return data
}

// race starts procs race children, waits until all are ready, releases them
// at once (closing the pipe they all read), and returns their exit statuses
// and stderrs.
func race(t *testing.T, procs int, env []string) ([]int, []string) {
	t.Helper()
	barrierR, barrierW, err := os.Pipe()
	must(t, err)
	readyR, readyW, err := os.Pipe()
	must(t, err)
	defer readyR.Close()
	cmds := make([]*exec.Cmd, procs)
	stderr := make([]bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = lockChildCmd("race", env)
		cmds[i].Stdin, cmds[i].Stdout, cmds[i].Stderr = barrierR, readyW, &stderr[i]
		if err := cmds[i].Start(); err != nil {
			barrierW.Close()
			t.Fatal(err)
		}
	}
	barrierR.Close()
	readyW.Close()
	ready := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(readyR, make([]byte, procs))
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("timed out")
	}
	barrierW.Close()
	codes := make([]int, procs)
	out := make([]string, procs)
	for i, c := range cmds {
		c.Wait()
		codes[i], out[i] = c.ProcessState.ExitCode(), stderr[i].String()
	}
	if err != nil {
		t.Fatalf("children not ready: %v: %q", err, out)
	}
	return codes, out
}

func lockChildCmd(part string, env []string) *exec.Cmd {
	c := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	c.Env = append(append(os.Environ(), lockChildEnv+"="+part), env...)
	return c
}

// startChild runs a hold or idle child and waits until it says ready; closing
// the returned pipe ends it.
func startChild(t *testing.T, part, path string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	c := lockChildCmd(part, []string{lockPathEnv + "=" + path})
	stdin, err := c.StdinPipe()
	must(t, err)
	stdout, err := c.StdoutPipe()
	must(t, err)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	must(t, c.Start())
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("%s child: %q %v %s", part, line, err, stderr.String())
	}
	return c, stdin
}

func TestLockHeldByLiveProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "local.lock")
	holder, stdin := startChild(t, "hold", p)
	_, err := Acquire(p, "upload")
	var held *HeldError
	host, _ := os.Hostname()
	if !errors.As(err, &held) || held.Info.PID != holder.Process.Pid || held.Info.Host != host || held.Info.Command != "promote" {
		t.Fatalf("acquire while held by pid %d: %#v", holder.Process.Pid, err)
	}
	for _, want := range []string{p, "pid " + strconv.Itoa(holder.Process.Pid), host, "promote"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %q", err, want)
		}
	}
	// The holder releases and ends: the lock is free, its file left empty.
	stdin.Close()
	must(t, holder.Wait())
	l := acquireFree(t, p)
	must(t, l.Release())
	must(t, l.Release())
	if raw, err := os.ReadFile(p); err != nil || len(raw) != 0 {
		t.Errorf("after release: %q %v (want an empty lock file)", raw, err)
	}
	acquireFree(t, p).Release()
}

// A holder killed with SIGKILL leaves its record; the kernel drops its flock,
// so the lock is free even if its pid is reused meanwhile.
func TestLockOfKilledHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local.lock")
	holder, _ := startChild(t, "hold", p)
	must(t, holder.Process.Kill())
	holder.Wait()
	if raw, _ := os.ReadFile(p); !bytes.Contains(raw, []byte(strconv.Itoa(holder.Process.Pid))) {
		t.Fatalf("the killed holder's record is gone: %q", raw)
	}
	acquireFree(t, p).Release()

	idle, _ := startChild(t, "idle", p)
	host, _ := os.Hostname()
	reused, _ := json.Marshal(lockRecord{LockInfo: LockInfo{PID: idle.Process.Pid, Host: host, Command: "upload"}, Flock: true})
	must(t, os.WriteFile(p, reused, 0o644))
	acquireFree(t, p).Release()
}

// Lock files without a flock held: an older releng's record of a live
// process on this host is respected; an empty or garbled file is free.
func TestLockLeftovers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local.lock")
	idle, _ := startChild(t, "idle", p)
	host, _ := os.Hostname()
	legacy, _ := json.Marshal(LockInfo{PID: idle.Process.Pid, Host: host, Command: "upload"})
	must(t, os.WriteFile(p, legacy, 0o644))
	var held *HeldError
	if _, err := Acquire(p, "upload"); !errors.As(err, &held) || held.Info.PID != idle.Process.Pid {
		t.Errorf("an older releng's live lock: %v", err)
	}
	for _, content := range []string{"", "{\"pid\":12,\"ho"} {
		must(t, os.WriteFile(p, []byte(content), 0o644))
		acquireFree(t, p).Release()
	}
}

func TestLockSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "local.lock")
	target := filepath.Join(dir, "elsewhere")
	must(t, os.Symlink(target, p))
	_, err := Acquire(p, "upload")
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked lock file: %v", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("the link's target was created: %v", err)
	}
	must(t, os.WriteFile(target, []byte("keep"), 0o644))
	if _, err := Acquire(p, "upload"); err == nil {
		t.Error("symlink to an existing file accepted")
	}
	if raw, _ := os.ReadFile(target); string(raw) != "keep" {
		t.Errorf("the link's target was written: %q", raw)
	}
}

func acquireFree(t *testing.T, p string) *Lock {
	t.Helper()
	l, err := Acquire(p, "upload")
	if err != nil {
		t.Fatalf("free lock not taken: %v", err)
	}
	return l
}
