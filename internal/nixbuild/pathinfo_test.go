package nixbuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/testenv"
)

func TestOutputsAndClosureInfo(t *testing.T) {
	tn := testenv.SetupNix(t)
	dir := t.TempDir()
	flake := fmt.Sprintf(`{ outputs = { self }: let
  b = derivation { name = "pathinfo-b"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo %d > $out"]; };
in { packages.x86_64-linux.a = derivation { name = "pathinfo-a"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo ${b} > $out"]; }; }; }
`, os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &Nix{Dir: dir, Env: tn.Env}
	ctx := context.Background()
	outs, err := n.Outputs(ctx, "path:"+dir+"#a")
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || !strings.HasSuffix(outs[0], "-pathinfo-a") {
		t.Fatalf("outputs = %v", outs)
	}
	// A store path (through a symbolic link) is an installable too.
	link := filepath.Join(dir, "result")
	os.Symlink(outs[0], link)
	again, err := n.Outputs(ctx, link)
	if err != nil || len(again) != 1 || again[0] != outs[0] {
		t.Fatalf("outputs of a link = %v, %v", again, err)
	}
	infos, err := n.ClosureInfo(ctx, outs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || len(infos[0].References)+len(infos[1].References) != 1 {
		t.Fatalf("closure = %+v", infos)
	}
	if _, err := n.Outputs(ctx, "path:"+dir+"#nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing attribute: %v", err)
	}
	if _, err := n.Outputs(ctx, "--impure"); err == nil {
		t.Error("an option was accepted as an installable")
	}
}
