package journal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/testenv"
)

const fuzzRelease = "hello 1.0.0 abc"

// fuzzJournalSeed is a journal as upload writes it: plans, objects, a
// multipart upload in progress, steps, another release's entries.
func fuzzJournalSeed() []byte {
	var b []byte
	for _, e := range []Entry{
		{Kind: "plan", Step: "cache", Plan: &plan.Totals{Send: 2, SendBytes: 30}},
		{Kind: "object", Step: "cache", Key: "s3://b/nar/x.nar.zst", Size: 10, SHA256: "aa"},
		{Kind: "object", Step: "cache", Key: "s3://b/x.narinfo", Size: 20, SHA256: "bb", Note: "already there"},
		{Kind: "step", Step: "cache"},
		{Kind: "upload", Key: "s3://b/big", Upload: &bucket.UploadState{ID: "u1", PartSize: 5, Parts: []bucket.Part{{Number: 1, ETag: "e1", Size: 5}}}},
		{Kind: "deleted", Step: "releases", Key: "s3://b/old"},
		{Kind: "upload-done", Key: "s3://b/big"},
		{Release: "hello 0.9.0 def", Kind: "step", Step: "releases"},
	} {
		if e.Release == "" {
			e.Release = fuzzRelease
		}
		line, _ := json.Marshal(e)
		b = append(append(b, line...), '\n')
	}
	return b
}

// FuzzJournal feeds arbitrary bytes to the journal's two readers, Open
// (upload and promote, resuming) and Summary (status). An error names the
// file. When Open accepts a journal, Summary agrees with it on the steps
// done and objects published, reopening it gives the same state, and an
// entry appended to it is there when it is opened again: Open never leaves
// a file that the next Open refuses or reads otherwise. Memory stays a
// small multiple of the file's size.
func FuzzJournal(f *testing.F) {
	seed := fuzzJournalSeed()
	f.Add(seed)
	f.Add(append(seed, `{"release":"hello 1.0.0 abc","kind":"st`...))
	f.Add(append(seed, "garbage\n"...))
	f.Add(seed[:len(seed)-1])
	f.Add(append(seed, `{"release":"hello 1.0.0 abc","kind":"step","step":"docs"}`...))
	f.Add([]byte("\n\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "state", "local.journal")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		limit := 32*uint64(len(data)) + 2<<20 // Open's 1 MiB line buffer
		var steps []string
		var objects int
		var err error
		testenv.CheckAllocBytes(t, "Summary", limit, func() { steps, objects, _, err = Summary(p, fuzzRelease) })
		if err != nil {
			t.Fatalf("Summary: %v", err)
		}
		var j *Journal
		testenv.CheckAllocBytes(t, "Open", limit, func() { j, err = Open(p, fuzzRelease) })
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("the error does not name the journal: %v", err)
			}
			return
		}
		state := func(j *Journal) ([]string, int) {
			s := j.Steps()
			slices.Sort(s)
			return s, j.Objects()
		}
		s1, o1 := state(j)
		j.Close()
		slices.Sort(steps)
		if !slices.Equal(steps, s1) || objects != o1 {
			t.Fatalf("Summary says steps %q and %d objects, Open %q and %d", steps, objects, s1, o1)
		}
		j, err = Open(p, fuzzRelease)
		if err != nil {
			t.Fatalf("the journal Open accepted is refused when opened again: %v", err)
		}
		if s2, o2 := state(j); !slices.Equal(s1, s2) || o1 != o2 {
			t.Fatalf("opened again, steps %q and %d objects, were %q and %d", s2, o2, s1, o1)
		}
		_, had := j.Object("s3://b/fuzz-new")
		if err := j.Append(Entry{Kind: "object", Step: "fuzz", Key: "s3://b/fuzz-new", Size: 1}); err != nil {
			t.Fatal(err)
		}
		if err := j.Append(Entry{Kind: "step", Step: "fuzz"}); err != nil {
			t.Fatal(err)
		}
		j.Close()
		j, err = Open(p, fuzzRelease)
		if err != nil {
			t.Fatalf("after an append, the journal is refused: %v", err)
		}
		defer j.Close()
		want := o1
		if !had {
			want++
		}
		if _, ok := j.Object("s3://b/fuzz-new"); !ok || !j.StepDone("fuzz") || j.Objects() != want {
			t.Fatalf("after an append: object %v, step %v, %d objects (want %d)", ok, j.StepDone("fuzz"), j.Objects(), want)
		}
		for _, s := range s1 {
			if !j.StepDone(s) {
				t.Fatalf("after an append, step %q is no longer done", s)
			}
		}
	})
}
