package dir_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
)

// tmpFiles lists the .releng-tmp-* files below root, as paths relative to it.
func tmpFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".releng-tmp-") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestLeftovers: the temporary files a killed writer left (a Put's, a
// record's, a resumable upload's staging file) in the directories of the
// keys asked about are found and removed; a live writer's is not, and its
// Put completes; temporary files elsewhere are not looked at.
func TestLeftovers(t *testing.T) {
	ctx := context.Background()
	b, root := newDir(t)
	buckettest.Put(t, b, "nar/a.nar", []byte("a"), bucket.PutOptions{})
	buckettest.Put(t, b, "a.narinfo", []byte("ai"), bucket.PutOptions{})
	// What killed writers leave: nobody holds these.
	dead := []string{"nar/.releng-tmp-0123456789abcdef01234567", "nar/.releng-tmp-up-0123456789abcdef0123456789abcdef", ".releng-tmp-76543210fedcba9876543210"}
	for _, d := range dead {
		if err := os.WriteFile(filepath.Join(root, d), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recDir := filepath.Join(root, ".releng-meta", "objects")
	recs, err := os.ReadDir(recDir)
	if err != nil || len(recs) == 0 {
		t.Fatalf("records: %v %v", recs, err)
	}
	deadRec := ".releng-meta/objects/" + recs[0].Name() + "/.releng-tmp-aaaaaaaaaaaaaaaaaaaaaaaa"
	os.WriteFile(filepath.Join(root, deadRec), []byte("{"), 0o644)
	// Not in a directory of the keys asked about.
	os.MkdirAll(filepath.Join(root, "other"), 0o755)
	os.WriteFile(filepath.Join(root, "other", ".releng-tmp-bbbbbbbbbbbbbbbbbbbbbbbb"), nil, 0o644)

	// A live Put to nar/ holds its temporary file.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := b.Put(ctx, "nar/b.nar", pr, 8, bucket.PutOptions{})
		done <- err
	}()
	pw.Write([]byte("live"))
	var live string
	for deadline := time.Now().Add(10 * time.Second); live == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, f := range tmpFiles(t, filepath.Join(root, "nar")) {
			if !strings.Contains(f, "0123456789abcdef") {
				live = "nar/" + f
			}
		}
	}
	if live == "" {
		t.Fatal("the live Put's temporary file did not appear")
	}

	objs := []bucket.ObjectInfo{{Key: "nar/a.nar", Size: -1}, {Key: "nar/b.nar", Size: -1}, {Key: "a.narinfo", Size: 2}}
	found, err := bucket.Leftovers(ctx, b, objs)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range found {
		keys = append(keys, l.Key)
		if l.UploadID != "" || l.Size != int64(len("half")) && l.Key != deadRec || l.Started.IsZero() {
			t.Errorf("leftover %+v", l)
		}
	}
	want := append(slices.Clone(dead), deadRec)
	slices.Sort(want)
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("Leftovers = %q\nwant %q (not the live %s nor other/)", keys, want, live)
	}
	removed, err := bucket.RemoveLeftovers(ctx, b, objs, time.Time{})
	if err != nil || len(removed) != len(want) {
		t.Fatalf("RemoveLeftovers = %v, %v", removed, err)
	}
	if got, want := tmpFiles(t, root), []string{live, "other/.releng-tmp-bbbbbbbbbbbbbbbbbbbbbbbb"}; !slices.Equal(got, want) {
		t.Errorf("temporary files after RemoveLeftovers: %q, want %q", got, want)
	}
	// Removing a held file is refused quietly.
	if err := bucket.RemoveLeftover(ctx, b, bucket.Leftover{Key: live}); err != nil {
		t.Errorf("RemoveLeftover of a live file: %v", err)
	}
	if err := bucket.RemoveLeftover(ctx, b, bucket.Leftover{Key: "nar/a.nar"}); err == nil {
		t.Errorf("RemoveLeftover of an object: no error")
	}
	pw.Write([]byte("done"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("the live Put failed: %v", err)
	}
	if rc, err := b.Get(ctx, "nar/b.nar"); err != nil {
		t.Error(err)
	} else if got, _ := io.ReadAll(rc); string(got) != "livedone" {
		t.Errorf("nar/b.nar = %q", got)
	} else {
		rc.Close()
	}
	if got := tmpFiles(t, root); !slices.Equal(got, []string{"other/.releng-tmp-bbbbbbbbbbbbbbbbbbbbbbbb"}) {
		t.Errorf("temporary files at the end: %q", got)
	}
}

// TestHeldStagingNotResumed: a resumable upload's staging file that a live
// writer holds is not resumed by another PutResumable (which starts its
// own), nor listed as a leftover; once its writer is gone, it is.
func TestHeldStagingNotResumed(t *testing.T) {
	ctx := context.Background()
	b, root := newDir(t)
	b.PartSize = bucket.MinPartSize
	data := make([]byte, 2*bucket.MinPartSize+1)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	body := bytes.NewReader(data)
	// The first upload stops in OnPart after its first part, holding its
	// staging file until released.
	var st bucket.UploadState
	release := make(chan struct{})
	stopped := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := b.PutResumable(ctx, "big", body, int64(len(data)), bucket.ResumableOptions{
			OnStart: func(s bucket.UploadState) error { st = s; return nil },
			OnPart: func(p bucket.Part) error {
				close(stopped)
				<-release
				return io.ErrUnexpectedEOF // stop, leaving the upload
			},
		})
		first <- err
	}()
	<-stopped
	objs := []bucket.ObjectInfo{{Key: "big", Size: int64(len(data))}}
	if found, err := bucket.Leftovers(ctx, b, objs); err != nil || len(found) != 0 {
		t.Errorf("Leftovers while the upload is live = %v, %v", found, err)
	}
	// Another writer given the same state does not take the held file.
	var second bucket.UploadState
	if _, err := b.PutResumable(ctx, "big", body, int64(len(data)), bucket.ResumableOptions{State: st, OnStart: func(s bucket.UploadState) error { second = s; return nil }}); err != nil {
		t.Fatal(err)
	}
	if second.ID == "" || second.ID == st.ID {
		t.Errorf("the second upload resumed a held staging file (ids %q, %q)", st.ID, second.ID)
	}
	close(release)
	<-first
	found, err := bucket.Leftovers(ctx, b, objs)
	if err != nil || len(found) != 1 || !strings.HasSuffix(found[0].Key, st.ID) {
		t.Fatalf("Leftovers once the writer stopped = %v, %v; want its staging file", found, err)
	}
	if _, err := bucket.RemoveLeftovers(ctx, b, objs, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := tmpFiles(t, root); len(got) != 0 {
		t.Errorf("temporary files left: %q", got)
	}
}
