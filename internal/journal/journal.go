// Package journal is the append-only record that makes `upload` and
// `promote` resumable (SPEC §10.4): each completed step and object with its
// checksum, and the state of multipart uploads in progress, one JSON line per
// entry in release/state/ENV.journal, fsynced as it is written. It also holds
// the per-environment lock (release/state/ENV.lock) with the holder's pid and
// host. Secrets never go into either.
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/fsutil"
	"github.com/releng-project/releng/internal/plan"
)

// Entry is one line of the journal.
type Entry struct {
	Time time.Time `json:"time"`
	// Release identifies what was being published (NAME VERSION COMMIT):
	// entries of another release are ignored.
	Release string `json:"release"`
	// Kind is "plan" (a step's plan, with its totals, about to be
	// executed), "step" (a whole step done), "object" (one object
	// published), "deleted" (one object removed), "upload" (a multipart
	// upload started or a part sent) or "upload-done".
	Kind string `json:"kind"`
	// Step is the step of plan, step, object and deleted entries.
	Step string `json:"step,omitempty"`
	// Plan is the totals of a step's plan.
	Plan *plan.Totals `json:"plan,omitempty"`
	// Key is the object's URL (bucket URL + key) for object and upload entries.
	Key    string              `json:"key,omitempty"`
	Size   int64               `json:"size,omitempty"`
	SHA256 string              `json:"sha256,omitempty"`
	Upload *bucket.UploadState `json:"upload,omitempty"`
	Note   string              `json:"note,omitempty"`
}

// Journal is an open journal file.
type Journal struct {
	mu      sync.Mutex
	path    string
	release string
	f       *os.File
	// state rebuilt from the file
	steps   map[string]bool
	objects map[string]Entry
	uploads map[string]*bucket.UploadState
}

// Open reads the journal at path (if any) and opens it for appending. Only
// entries of release count.
func Open(path, release string) (*Journal, error) {
	j := &Journal{path: path, release: release, steps: map[string]bool{}, objects: map[string]Entry{}, uploads: map[string]*bucket.UploadState{}}
	data, err := read(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Only whole lines count. A crash can leave the last line cut short
	// (no newline) or garbled: it is dropped, in memory and from the file,
	// so that the state read here is the state the next Open reads, and
	// appends start on a line of their own. A garbled line before another
	// whole line is corruption, not a crash.
	keep := 0
	for line := 1; ; line++ {
		nl := bytes.IndexByte(data[keep:], '\n')
		if nl < 0 {
			break
		}
		next := keep + nl + 1
		var e Entry
		if err := json.Unmarshal(data[keep:next-1], &e); err != nil {
			if bytes.IndexByte(data[next:], '\n') < 0 {
				break
			}
			return nil, fmt.Errorf("%s:%d: corrupt journal line (%v); move the file away to start the upload over", path, line, err)
		}
		if e.Release == release {
			j.apply(e)
		}
		keep = next
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if keep < len(data) {
		if err := os.Truncate(path, int64(keep)); err != nil {
			return nil, err
		}
	}
	j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return j, nil
}

func (j *Journal) apply(e Entry) {
	switch e.Kind {
	case "step":
		j.steps[e.Step] = true
	case "object":
		j.objects[e.Key] = e
		delete(j.uploads, e.Key)
	case "upload":
		if e.Upload != nil {
			u := *e.Upload
			j.uploads[e.Key] = &u
		}
	case "upload-done":
		delete(j.uploads, e.Key)
	}
}

// Append writes e (stamped with the release and time) and syncs it.
func (j *Journal) Append(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Release = j.release
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	j.apply(e)
	return nil
}

// StepDone reports whether step was recorded as complete.
func (j *Journal) StepDone(step string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.steps[step]
}

// Steps lists the completed steps.
func (j *Journal) Steps() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var s []string
	for k := range j.steps {
		s = append(s, k)
	}
	return s
}

// Object returns the recorded entry of a published object.
func (j *Journal) Object(key string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.objects[key]
	return e, ok
}

// Objects returns the number of objects recorded as published.
func (j *Journal) Objects() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.objects)
}

// Upload returns the saved state of a multipart upload in progress.
func (j *Journal) Upload(key string) (bucket.UploadState, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	u, ok := j.uploads[key]
	if !ok {
		return bucket.UploadState{}, false
	}
	c := *u
	c.Parts = append([]bucket.Part(nil), u.Parts...)
	return c, true
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// read reads the journal file, a regular file of at most fsutil.MaxJournal
// bytes (checked while reading: a link to a device or a runaway file is an
// error naming the file, not an exhausted memory).
func read(path string) ([]byte, error) {
	data, err := fsutil.ReadFile(path, fsutil.MaxJournal)
	var big *fsutil.TooLargeError
	if errors.As(err, &big) {
		return nil, fmt.Errorf("%w (or move it away to start the upload over)", err)
	}
	return data, err
}
