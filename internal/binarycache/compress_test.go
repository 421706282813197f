package binarycache

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"
	"time"
)

// compressFrames compresses data through a frameWriter, written in chunks
// of the given size.
func compressFrames(t *testing.T, data []byte, workers, chunk int) []byte {
	t.Helper()
	c, err := newCompressor(-1, workers)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var out bytes.Buffer
	fw := c.newWriter(context.Background(), &out, int64(len(data)))
	for off := 0; off < len(data); off += chunk {
		if _, err := fw.Write(data[off:min(off+chunk, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestFramesIndependentOfCores: the compressed bytes depend on the data
// only, not on the number of workers or how the writes are cut; they
// decode to the data with our decoder and with the zstd command.
func TestFramesIndependentOfCores(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, size := range []int{1, 5000, FrameSize, 3*FrameSize + 777} {
		data := testContent(rng, size)
		want := compressFrames(t, data, 1, 64<<10)
		for _, tc := range []struct{ workers, chunk int }{{2, 64 << 10}, {4, 1 << 20}, {3, 4093}} {
			if got := compressFrames(t, data, tc.workers, tc.chunk); !bytes.Equal(got, want) {
				t.Fatalf("size %d: %d workers, writes of %d: output differs", size, tc.workers, tc.chunk)
			}
		}
		if got := decodeBody(t, "zstd", want); !bytes.Equal(got, data) {
			t.Fatalf("size %d: does not decode to the input", size)
		}
		if size > FrameSize {
			zstdCLI, err := exec.LookPath("zstd")
			if err != nil {
				t.Log("zstd is not installed: skipping the cross-check with the zstd command (Nix itself reads these frames in nix_test.go)")
				continue
			}
			cmd := exec.Command(zstdCLI, "-dc")
			cmd.Stdin = bytes.NewReader(want)
			got, err := cmd.Output()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("zstd -d: %v (%d bytes, want %d)", err, len(got), len(data))
			}
		}
	}
}

// TestFrameWriterAbort: an aborted or cancelled writer gives its memory
// back and leaves nothing blocked.
func TestFrameWriterAbort(t *testing.T) {
	c, err := newCompressor(-1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	data := testContent(rand.New(rand.NewPCG(1, 2)), 3*FrameSize)
	for range 3 {
		pr, pw := io.Pipe()
		fw := c.newWriter(context.Background(), pw, int64(len(data)))
		go func() { io.CopyN(io.Discard, pr, 100); pr.Close() }()
		fw.Write(data)
		fw.Abort()
		ctx, cancel := context.WithCancel(context.Background())
		fw = c.newWriter(ctx, io.Discard, int64(len(data)))
		fw.Write(data[:FrameSize+1])
		cancel()
		fw.Write(data[FrameSize+1:])
		fw.Close()
	}
	// The whole budget is free again (a frame cancelled while with a
	// worker is released when the worker is done with it).
	deadline := time.Now().Add(5 * time.Second)
	for !c.budget.TryAcquire(int64(c.workers+1) * FrameSize) {
		if time.Now().After(deadline) {
			t.Fatal("frame budget leaked")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFrameEncoderExtremes: the build's encoder (libzstd or klauspost)
// writes a frame for no input, for a whole frame of random bytes (the
// largest output: it must fit outCap) and for a frame of zeros, each
// decoding to its input.
func TestFrameEncoderExtremes(t *testing.T) {
	enc, err := newFrameEncoder(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.close()
	random := make([]byte, FrameSize)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for name, in := range map[string][]byte{"empty": {}, "random": random, "zeros": make([]byte, FrameSize)} {
		out, err := enc.encode(make([]byte, 0, outCap), in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out) == 0 || len(out) > outCap {
			t.Fatalf("%s: %d bytes of frame", name, len(out))
		}
		if got := decodeBody(t, "zstd", out); !bytes.Equal(got, in) {
			t.Fatalf("%s: the frame decodes to %d bytes, not the %d of its input", name, len(got), len(in))
		}
	}
}
