//go:build unix

package nar

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mksocket(t *testing.T, p string) {
	t.Helper()
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skipf("cannot create a socket at %s: %v", p, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}

func mkdevice(t *testing.T, p string) {
	t.Helper()
	// /dev/null's numbers on Linux; only root may create device nodes.
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o600, 1<<8|3); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("creating a device node needs root")
		}
		t.Fatal(err)
	}
}
