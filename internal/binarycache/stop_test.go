package binarycache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/runctx"
)

// TestStopFinishesInFlight: asked to stop (runctx.WithStop) once the first
// NAR is sent, a push starts no new NAR, publishes only paths whose
// references are published, returns runctx.ErrInterrupted without hanging
// on the references it never sent, and leaves a consistent cache that a
// second push completes. Asked before it starts, it sends no NAR.
func TestStopFinishesInFlight(t *testing.T) {
	store := makeTestStore(t, 3, chainSpecs(12, 3000, 40_000))
	keyFile, pub := testKey(t, "test-1")
	for _, early := range []bool{false, true} {
		b := dirBucket(t)
		uri := mustURI(t, "file://"+b.Path()+"?secret-key="+keyFile)
		keys, err := uri.LoadKeys(false)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var once sync.Once
		if early {
			close(stop)
		}
		started := 0
		ctx := runctx.WithStop(context.Background(), stop)
		done := make(chan struct{})
		var sum *Summary
		go func() {
			defer close(done)
			sum, err = Push(ctx, PushOptions{URI: uri, Bucket: b, Paths: store.Infos, Keys: keys, Jobs: 2, OnEvent: func(e Event) {
				switch e.Kind {
				case EventNARStart:
					started++
				case EventNARDone:
					once.Do(func() { close(stop) })
				}
			}})
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the stopped push did not return")
		}
		if !errors.Is(err, runctx.ErrInterrupted) {
			t.Errorf("early %v: err %v, want ErrInterrupted", early, err)
		}
		if early && started != 0 {
			t.Errorf("stopped before it began, the push started %d NARs", started)
		}
		// At most the NARs in flight when the first was done: Jobs of them.
		if !early && (started > 2+1 || sum.Pushed == len(store.Infos)) {
			t.Errorf("after the stop: %d NARs started, %d paths published of %d", started, sum.Pushed, len(store.Infos))
		}
		n := checkConsistent(t, b, store.Dir, true, false, []nixstore.PublicKey{pub})
		t.Logf("early %v: %d NARs started, %d narinfos published of %d", early, started, n, len(store.Infos))
		if _, err := Push(context.Background(), PushOptions{URI: uri, Bucket: b, Paths: store.Infos, Keys: keys, Jobs: 2}); err != nil {
			t.Fatal(err)
		}
		if n := checkConsistent(t, b, store.Dir, true, false, []nixstore.PublicKey{pub}); n != len(store.Infos) {
			t.Errorf("after the second push: %d narinfos, want %d", n, len(store.Infos))
		}
	}
}
