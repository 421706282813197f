package runctx

import (
	"context"
	"errors"
)

// ErrInterrupted is what work returns when it stopped because the user
// asked it to (a first Ctrl-C or SIGTERM): what was in flight finished,
// nothing new was started, and what was published is consistent. Running
// the same command again finishes the work.
var ErrInterrupted = errors.New("interrupted")

type stopKey struct{}

// WithStop returns ctx carrying stop: once stop is closed, the work done
// under ctx starts no new object, lets the ones in flight finish and
// returns ErrInterrupted. ctx itself stays live: cancelling it (a second
// Ctrl-C) aborts at once. The CLI sets it; library packages ask Stopping
// or select on StopChan, so they learn of it without knowing the CLI.
func WithStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// StopChan is the stop channel of ctx: closed once a stop was asked for;
// nil (it never fires in a select) when ctx carries none.
func StopChan(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return ch
}

// Stopping reports whether a stop of ctx was asked for: start nothing new.
func Stopping(ctx context.Context) bool {
	select {
	case <-StopChan(ctx):
		return true
	default:
		return false
	}
}
