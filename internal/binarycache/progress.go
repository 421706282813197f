package binarycache

import (
	"fmt"
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress renders the events of a push on a stream (stderr): a bar per
// phase on a terminal, plain lines otherwise (CI logs).
type Progress struct {
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

// NewProgress returns a Progress writing to w; terminal selects bars.
func NewProgress(w io.Writer, terminal bool) *Progress {
	return &Progress{w: w, terminal: terminal}
}

// Event is a PushOptions.OnEvent.
func (pr *Progress) Event(e Event) {
	if pr.terminal {
		pr.bars(e)
		return
	}
	switch e.Kind {
	case EventStart:
		pr.total = e.Total
		fmt.Fprintf(pr.w, "checking %d paths\n", e.Total)
	case EventChecked:
		pr.checked++
	case EventPlan:
		pr.narTotal = e.Bytes
		fmt.Fprintf(pr.w, "%d paths to push (%s of NAR), %d already in the cache\n", e.Total, Size(e.Bytes), pr.checked-e.Total)
	case EventNARBytes:
		pr.narDone += e.Bytes
		if time.Since(pr.lastBytes) >= 5*time.Second {
			pr.lastBytes = time.Now()
			fmt.Fprintf(pr.w, "serialised %s of %s\n", Size(pr.narDone), Size(pr.narTotal))
		}
	case EventNARDone:
		if e.Reused {
			fmt.Fprintf(pr.w, "NAR of %s already uploaded by an interrupted push\n", e.Path)
		}
	case EventPublished:
		fmt.Fprintf(pr.w, "pushed %s (%s → %s)\n", e.Path, Size(e.Bytes), Size(e.FileSize))
	}
}

func (pr *Progress) bars(e Event) {
	switch e.Kind {
	case EventStart:
		pr.p = mpb.New(mpb.WithOutput(pr.w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		pr.check = pr.p.AddBar(int64(e.Total),
			mpb.PrependDecorators(decor.Name("checking  ", decor.WC{W: 10}), decor.CountersNoUnit("%d / %d")),
			mpb.AppendDecorators(decor.Percentage()))
		if e.Total == 0 {
			pr.check.SetTotal(0, true)
		}
	case EventChecked:
		pr.check.Increment()
	case EventPlan:
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
	case EventNARBytes:
		pr.nar.IncrInt64(e.Bytes)
	case EventNARDone:
		if e.Reused {
			pr.nar.IncrInt64(e.Bytes)
		}
	case EventPublished:
		pr.paths.Increment()
	}
}

// Done ends the bars (after Push returned); failed aborts them.
func (pr *Progress) Done(failed bool) {
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

// Size formats a byte count with binary units.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
