// Package runctx is the context of one releng run, made by the CLI and
// handed to every stage and command: releng's version (the same in every
// image layer-cache key and user agent), the cache directory, how many
// things run at once, where progress goes and how the user is asked to
// confirm. Library packages never print and never read standard input:
// they emit typed Events through the run, and the CLI renders them
// (progress bars on a terminal, plain lines otherwise, JSON lines under
// --json).
package runctx

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/releng-project/releng/internal/retry"
)

// Run is the context of one run.
type Run struct {
	// Version is releng's version ("dev" for a build without one).
	Version string
	// CacheDir holds the image layer cache ($RELENG_CACHE_DIR, else
	// ~/.cache/releng).
	CacheDir string
	// Jobs is how many objects are checked or sent at once (0: each
	// stage's default).
	Jobs int
	// Retry is the retry policy of every request to a bucket, cache or
	// registry (zero: retry.Policy's defaults).
	Retry retry.Policy
	// Events receives progress; nil drops it.
	Events func(Event)
	// Confirm asks the user to type phrase before env is published to,
	// after the plans were shown; nil means nobody can be asked (an
	// environment that needs confirmation then needs --noconfirm).
	Confirm func(env, phrase string) error
}

// Kind says what an Event reports.
type Kind string

const (
	// Info is a line of progress for people.
	Info Kind = "info"
	// Warning is something the user should know; the run goes on.
	Warning Kind = "warning"
	// StageStart and StageDone frame a stage; Done's Bytes and Count say
	// what it sent.
	StageStart Kind = "stage-start"
	StageDone  Kind = "stage-done"
	// Object: one object was sent (Object names it, Bytes its size).
	Object Kind = "object"
	// Retry: a request failed transiently and is tried again.
	Retry Kind = "retry"
)

// Event is one progress report.
type Event struct {
	Kind    Kind   `json:"kind"`
	Stage   string `json:"stage,omitempty"`
	Object  string `json:"object,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	Count   int    `json:"count,omitempty"`
	Message string `json:"message,omitempty"`
}

// Emit sends e to the sink, if any.
func (r *Run) Emit(e Event) {
	if r != nil && r.Events != nil {
		r.Events(e)
	}
}

// Infof emits an Info event of stage.
func (r *Run) Infof(stage, format string, args ...any) {
	r.Emit(Event{Kind: Info, Stage: stage, Message: fmt.Sprintf(format, args...)})
}

// Warnf emits a Warning event of stage.
func (r *Run) Warnf(stage, format string, args ...any) {
	r.Emit(Event{Kind: Warning, Stage: stage, Message: fmt.Sprintf(format, args...)})
}

// Cache is CacheDir, or DefaultCacheDir.
func (r *Run) Cache() string {
	if r == nil || r.CacheDir == "" {
		return DefaultCacheDir()
	}
	return r.CacheDir
}

// JobsOr is Jobs, or def when unset.
func (r *Run) JobsOr(def int) int {
	if r == nil || r.Jobs <= 0 {
		return def
	}
	return r.Jobs
}

// RetryPolicy is the run's retry policy (zero: the defaults).
func (r *Run) RetryPolicy() retry.Policy {
	if r == nil {
		return retry.Policy{}
	}
	return r.Retry
}

// RelengVersion is Version, or "dev".
func (r *Run) RelengVersion() string {
	if r == nil || r.Version == "" {
		return "dev"
	}
	return r.Version
}

// UserAgent is what releng says it is to servers: releng/VERSION.
func (r *Run) UserAgent() string { return "releng/" + r.RelengVersion() }

// DefaultCacheDir is $RELENG_CACHE_DIR, else ~/.cache/releng (the user
// cache directory), else a directory under the system's temp dir.
func DefaultCacheDir() string {
	if d := os.Getenv("RELENG_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "releng")
	}
	return filepath.Join(os.TempDir(), "releng-cache")
}
