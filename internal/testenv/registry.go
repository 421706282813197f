package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a running Docker registry (distribution) server.
type Registry struct {
	// Addr is host:port.
	Addr string
	Dir  string
}

// StartRegistry starts /usr/bin/docker-registry on a random port with
// filesystem storage in a temp dir, stopped when t ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := LookPath(t, "docker-registry", "apt-get install -y docker-registry")
	r := &Registry{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), Dir: t.TempDir()}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(r.Dir, "data"), r.Addr)
	cfgPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log := startProcess(t, exec.Command(bin, "serve", cfgPath), "registry")
	waitHTTP(t, "http://"+r.Addr+"/v2/", 200, 20*time.Second, log)
	return r
}
