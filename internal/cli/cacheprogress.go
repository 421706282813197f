package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/releng-project/releng/internal/binarycache"
	"github.com/releng-project/releng/internal/plan"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// cacheProgress renders the events of a push on a stream (stderr): a bar per
// phase on a terminal, plain lines otherwise (CI logs).
type cacheProgress struct {
	w        io.Writer
	terminal bool

	// plain
	lastBytes time.Time
	narDone   int64
	narTotal  int64
	checked   int
	total     int

	// terminal
	p                 *mpb.Progress
	check, nar, paths *mpb.Bar
}

// newCacheProgress returns a cacheProgress writing to w; terminal selects bars.
func newCacheProgress(w io.Writer, terminal bool) *cacheProgress {
	return &cacheProgress{w: w, terminal: terminal}
}

// Event is a binarycache.PushOptions.OnEvent.
func (pr *cacheProgress) Event(e binarycache.Event) {
	if pr.terminal {
		pr.bars(e)
		return
	}
	switch e.Kind {
	case binarycache.EventStart:
		pr.total = e.Total
		fmt.Fprintf(pr.w, "checking %d paths\n", e.Total)
	case binarycache.EventChecked:
		pr.checked++
	case binarycache.EventPlan:
		pr.narTotal = e.Bytes
		fmt.Fprintf(pr.w, "%d paths to push (%s of NAR), %d already in the cache\n", e.Total, plan.Size(e.Bytes), pr.checked-e.Total)
	case binarycache.EventNARBytes:
		pr.narDone += e.Bytes
		if time.Since(pr.lastBytes) >= 5*time.Second {
			pr.lastBytes = time.Now()
			fmt.Fprintf(pr.w, "serialised %s of %s\n", plan.Size(pr.narDone), plan.Size(pr.narTotal))
		}
	case binarycache.EventNARDone:
		if e.Reused {
			fmt.Fprintf(pr.w, "NAR of %s already uploaded by an interrupted push\n", e.Path)
		}
	case binarycache.EventPublished:
		fmt.Fprintf(pr.w, "pushed %s (%s → %s)\n", e.Path, plan.Size(e.Bytes), plan.Size(e.FileSize))
	}
}

func (pr *cacheProgress) bars(e binarycache.Event) {
	switch e.Kind {
	case binarycache.EventStart:
		pr.p = mpb.New(mpb.WithOutput(pr.w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		pr.check = pr.p.AddBar(int64(e.Total),
			mpb.PrependDecorators(decor.Name("checking  ", decor.WC{W: 10}), decor.CountersNoUnit("%d / %d")),
			mpb.AppendDecorators(decor.Percentage()))
		if e.Total == 0 {
			pr.check.SetTotal(0, true)
		}
	case binarycache.EventChecked:
		pr.check.Increment()
	case binarycache.EventPlan:
		pr.check.SetTotal(-1, true)
		pr.nar = pr.p.AddBar(e.Bytes,
			mpb.PrependDecorators(decor.Name("uploading ", decor.WC{W: 10}), decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
			mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), decor.Name(" "), decor.Percentage()))
		pr.paths = pr.p.AddBar(int64(e.Total),
			mpb.PrependDecorators(decor.Name("published ", decor.WC{W: 10}), decor.CountersNoUnit("%d / %d")),
			mpb.AppendDecorators(decor.Percentage()))
		if e.Total == 0 {
			pr.nar.SetTotal(0, true)
			pr.paths.SetTotal(0, true)
		}
	case binarycache.EventNARBytes:
		pr.nar.IncrInt64(e.Bytes)
	case binarycache.EventNARDone:
		if e.Reused {
			pr.nar.IncrInt64(e.Bytes)
		}
	case binarycache.EventPublished:
		pr.paths.Increment()
	}
}

// Done ends the bars (after Push returned); failed aborts them.
func (pr *cacheProgress) Done(failed bool) {
	if pr.p == nil {
		return
	}
	for _, b := range []*mpb.Bar{pr.check, pr.nar, pr.paths} {
		if b == nil {
			continue
		}
		if failed {
			b.Abort(false)
		} else {
			b.SetTotal(-1, true)
		}
	}
	pr.p.Wait()
	pr.p = nil
}
