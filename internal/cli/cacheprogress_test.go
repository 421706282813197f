package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/plan"
)

func TestCacheProgress(t *testing.T) {
	path := nixstore.StorePath{Dir: "/nix/store", Hash: "0123456789abcdfghijklmnpqrsvwxyz", Name: "hello-1.0"}
	events := []binarycache.Event{
		{Kind: binarycache.EventStart, Total: 3},
		{Kind: binarycache.EventChecked, Path: path, Missing: true},
		{Kind: binarycache.EventChecked}, {Kind: binarycache.EventChecked},
		{Kind: binarycache.EventPlan, Total: 1, Bytes: 3 << 20},
		{Kind: binarycache.EventNARStart, Path: path, Bytes: 3 << 20},
		{Kind: binarycache.EventNARBytes, Path: path, Bytes: 3 << 20},
		{Kind: binarycache.EventNARDone, Path: path, Bytes: 3 << 20, FileSize: 1 << 20},
		{Kind: binarycache.EventPublished, Path: path, Bytes: 3 << 20, FileSize: 1 << 20},
	}
	for _, terminal := range []bool{false, true} {
		var b bytes.Buffer
		p := newCacheProgress(&b, terminal)
		for _, e := range events {
			p.Event(e)
		}
		p.Done(false)
		out := b.String()
		if !terminal {
			for _, want := range []string{
				"checking 3 paths\n",
				"1 paths to push (3.0 MiB of NAR), 2 already in the cache\n",
				"pushed /nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-1.0 (3.0 MiB → 1.0 MiB)\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("plain progress lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("escape sequences in plain progress:\n%q", out)
			}
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := plan.Size(n); got != want {
			t.Errorf("plan.Size(%d) = %q, want %q", n, got, want)
		}
	}
}
