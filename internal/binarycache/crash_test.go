package binarycache

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/nixstore"
	"github.com/releng-project/releng/internal/testenv"
)

// TestPushHelperProcess is not a test: it is the push that
// TestKilledPushIsConsistent runs in a child process and kills.
func TestPushHelperProcess(t *testing.T) {
	if os.Getenv("RELENG_PUSH_HELPER") != "1" {
		t.Skip("helper process")
	}
	uri, err := ParseStoreURI(os.Getenv("RELENG_PUSH_URI"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	infos, err := LoadClosure(ctx, Source{StoreDir: os.Getenv("RELENG_PUSH_STORE"), ClosureFile: os.Getenv("RELENG_PUSH_CLOSURE")}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keys, err := uri.LoadKeys(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b, err := uri.Open(OpenOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Each event is a line on stdout: the parent kills after the n-th.
	onEvent := func(e Event) {
		if e.Kind != EventNARBytes {
			fmt.Fprintf(os.Stdout, "event %d %s\n", e.Kind, e.Path.Name)
		}
	}
	if _, err := Push(ctx, PushOptions{URI: uri, Bucket: b, Paths: infos, Keys: keys, Jobs: 2, OnEvent: onEvent}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helper is a push running in a child process.
type helper struct {
	cmd    *exec.Cmd
	events chan string // its event lines, closed at its end
	stderr *strings.Builder
}

// helperPush starts the helper process pushing store to uri.
func helperPush(t *testing.T, store *testStore, uri string, env []string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushHelperProcess$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "RELENG_PUSH_HELPER=1", "RELENG_PUSH_URI="+uri, "RELENG_PUSH_STORE="+store.Dir, "RELENG_PUSH_CLOSURE="+store.File)
	h := &helper{cmd: cmd, events: make(chan string, 1000), stderr: &strings.Builder{}}
	cmd.Stderr = h.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event ") {
				h.events <- sc.Text()
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return h
}

// wait waits for the helper's end and returns the number of events.
func (h *helper) wait() (int, error) {
	n := 0
	for range h.events {
		n++
	}
	return n, h.cmd.Wait()
}

// killAfter kills the helper with SIGKILL after its n-th event and a
// random delay of up to a millisecond.
func (h *helper) killAfter(n int, rng *rand.Rand) {
	for i := 0; i < n; i++ {
		if _, ok := <-h.events; !ok {
			break
		}
	}
	time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.wait()
}

// crashStore is a closure of 30 paths, four of them large leaves that the
// others refer to, so that a push takes long enough to be killed in every
// phase and narinfos appear all along it.
func crashStore(t *testing.T) *testStore {
	var specs []pathSpec
	for i := range 4 {
		specs = append(specs, pathSpec{name: fmt.Sprintf("big-%d", i), files: map[string]int{"blob": (i + 1) * 4 << 20}})
	}
	for i := range 26 {
		refs := []int{i % 4}
		if i > 0 {
			refs = append(refs, len(specs)-1)
		}
		specs = append(specs, pathSpec{name: fmt.Sprintf("pkg-%d", i), files: map[string]int{"a": 2000 + i, "b/c": 30_000}, refs: refs})
	}
	return makeTestStore(t, 42, specs)
}

// TestKilledPushIsConsistent kills a push (a separate process, with
// SIGKILL) at many moments: at every one, each narinfo in the cache names
// a NAR that is there and references whose narinfos are there; running
// the push again completes the cache.
func TestKilledPushIsConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a dozen pushes")
	}
	store := crashStore(t)
	keyFile, pub := testKey(t, "crash-1")
	type backend struct {
		name   string
		points int
		newURI func(t *testing.T, i int) (uri string, b bucket.Bucket)
		env    []string
	}
	backends := []backend{{
		name: "file", points: 10,
		newURI: func(t *testing.T, i int) (string, bucket.Bucket) {
			b := dirBucket(t)
			return "file://" + b.Path() + "?write-nar-listing=true&secret-key=" + keyFile, b
		},
	}}
	var m *testenv.MinIO
	if !testing.Short() {
		m = testenv.StartMinIO(t)
		backends = append(backends, backend{
			name: "s3", points: 4, env: m.AWSEnv(),
			newURI: func(t *testing.T, i int) (string, bucket.Bucket) {
				name := fmt.Sprintf("crash-%d", i)
				m.MakeBucket(t, name, false)
				raw := "s3://" + name + "?endpoint=" + m.Endpoint + "&scheme=http&region=us-east-1&write-nar-listing=true&secret-key=" + keyFile
				for _, kv := range m.AWSEnv() {
					k, v, _ := strings.Cut(kv, "=")
					t.Setenv(k, v)
				}
				b, err := mustURI(t, raw).Open(OpenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return raw, b
			},
		})
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			// How many events an uninterrupted push reports.
			uri, b := be.newURI(t, 0)
			total, err := helperPush(t, store, uri, be.env).wait()
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if n := checkConsistent(t, b, store.Dir, false, true, nil); n != len(store.Infos) {
				t.Fatalf("uninterrupted push: %d narinfos, want %d", n, len(store.Infos))
			}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			var partial, left []int
			for i := 1; i <= be.points; i++ {
				uri, b := be.newURI(t, i)
				// Kill points spread over the whole push, each at a random
				// event of its stretch.
				at := (i-1)*total/be.points + rng.IntN(max(1, total/be.points))
				helperPush(t, store, uri, be.env).killAfter(at, rng)
				n := checkConsistent(t, b, store.Dir, false, true, nil)
				partial = append(partial, n)
				left = append(left, len(leftoversOf(t, b, mustURI(t, uri), store)))
				// Re-run: it completes the push.
				h := helperPush(t, store, uri, be.env)
				if _, err := h.wait(); err != nil {
					t.Fatalf("re-run after kill %d: %v\n%s", i, err, h.stderr)
				}
				if n := checkConsistent(t, b, store.Dir, i == be.points, true, []nixstore.PublicKey{pub}); n != len(store.Infos) {
					t.Fatalf("re-run after kill %d: %d narinfos, want %d", i, n, len(store.Infos))
				}
				// The re-run removed what the killed push left.
				if l := leftoversOf(t, b, mustURI(t, uri), store); len(l) > 0 {
					t.Errorf("after the re-run of kill %d, left: %q", i, l)
				}
			}
			t.Logf("narinfos present at the kills: %v; unfinished writes left by each kill: %v, by each re-run: none", partial, left)
			if partial[0] == len(store.Infos) || partial[len(partial)-1] == 0 {
				t.Errorf("the kills did not span the push (%v)", partial)
			}
		})
	}
}
