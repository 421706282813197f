package binarycache

import (
	"bytes"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/nixstore"
)

func TestProgress(t *testing.T) {
	path := nixstore.StorePath{Dir: "/nix/store", Hash: "0123456789abcdfghijklmnpqrsvwxyz", Name: "hello-1.0"}
	events := []Event{
		{Kind: EventStart, Total: 3},
		{Kind: EventChecked, Path: path, Missing: true},
		{Kind: EventChecked}, {Kind: EventChecked},
		{Kind: EventPlan, Total: 1, Bytes: 3 << 20},
		{Kind: EventNARStart, Path: path, Bytes: 3 << 20},
		{Kind: EventNARBytes, Path: path, Bytes: 3 << 20},
		{Kind: EventNARDone, Path: path, Bytes: 3 << 20, FileSize: 1 << 20},
		{Kind: EventPublished, Path: path, Bytes: 3 << 20, FileSize: 1 << 20},
	}
	for _, terminal := range []bool{false, true} {
		var b bytes.Buffer
		p := NewProgress(&b, terminal)
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
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
