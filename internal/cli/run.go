package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/release"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// run is the context of this run, handed to every stage: releng's version,
// the cache directory, progress rendered on stderr (a bar per stage on a
// terminal, a line per event otherwise, JSON lines under --json) and the
// confirmation prompt on the terminal. There is one per App.
func (app *App) run() *runctx.Run {
	app.once.Do(func() {
		app.rc = &runctx.Run{
			Version:  app.Version,
			CacheDir: runctx.DefaultCacheDir(),
			Events:   app.renderEvent,
			Confirm:  app.confirm,
		}
		if !app.JSON && isTerminal(app.Err) {
			app.bars = &stageBars{w: app.Err, bars: map[string]*mpb.Bar{}}
		}
	})
	return app.rc
}

// stageBars draws a bar per stage: the objects sent against the plan's.
type stageBars struct {
	w    io.Writer
	p    *mpb.Progress
	bars map[string]*mpb.Bar
}

// event draws e; it reports false for events it leaves to the lines.
func (sb *stageBars) event(e runctx.Event) bool {
	switch e.Kind {
	case runctx.StageStart:
		if sb.p == nil {
			sb.p = mpb.New(mpb.WithOutput(sb.w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		}
		b := sb.p.AddBar(int64(e.Count),
			mpb.PrependDecorators(decor.Name(e.Stage, decor.WC{W: 10}), decor.CountersNoUnit("%d / %d")),
			mpb.AppendDecorators(decor.Percentage()))
		if e.Count == 0 {
			b.SetTotal(0, true)
		}
		sb.bars[e.Stage] = b
		return true
	case runctx.Object:
		if b := sb.bars[e.Stage]; b != nil {
			b.Increment()
			return true
		}
	case runctx.StageDone:
		if b := sb.bars[e.Stage]; b != nil {
			b.SetTotal(-1, true)
		}
	}
	return false
}

// done ends the bars: those of stages that did not finish are aborted.
func (sb *stageBars) done() {
	if sb == nil || sb.p == nil {
		return
	}
	for _, b := range sb.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	sb.p.Wait()
	sb.p = nil
}

// out is where progress lines go: above the bars while they are drawn.
func (sb *stageBars) out(w io.Writer) io.Writer {
	if sb != nil && sb.p != nil {
		return sb.p
	}
	return w
}

func (app *App) renderEvent(e runctx.Event) {
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.JSON {
		data, _ := json.Marshal(e)
		fmt.Fprintf(app.Err, "%s\n", data)
		return
	}
	if app.bars != nil && app.bars.event(e) {
		return
	}
	w := app.bars.out(app.Err)
	prefix := "releng: "
	if e.Stage != "" {
		prefix += e.Stage + ": "
	}
	switch e.Kind {
	case runctx.Warning:
		fmt.Fprintf(w, "%swarning: %s\n", prefix, e.Message)
	case runctx.Object:
		if app.Verbose {
			fmt.Fprintf(w, "%ssent %s (%s)\n", prefix, e.Object, plan.Size(e.Bytes))
		}
	case runctx.StageStart:
		fmt.Fprintf(w, "%s%s\n", prefix, e.Message)
	case runctx.StageDone:
		fmt.Fprintf(w, "%sdone: %s\n", prefix, e.Message)
	default:
		fmt.Fprintf(w, "%s%s\n", prefix, e.Message)
	}
}

// onRetry renders a retried request like any progress event.
func (app *App) onRetry(e retry.Event) {
	app.renderEvent(runctx.Event{Kind: runctx.Retry, Object: e.URL, Message: e.String()})
}

// confirm asks for the phrase on stderr and reads it from stdin.
func (app *App) confirm(env, phrase string) error {
	fmt.Fprintf(app.Err, "Type %q to publish to %s: ", phrase, env)
	if app.In == nil {
		return fmt.Errorf("environment %s needs confirmation and there is no input; pass --noconfirm", env)
	}
	line, err := bufio.NewReader(app.In).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("environment %s needs confirmation (type %q, or pass --noconfirm): %v", env, phrase, err)
	}
	if strings.TrimSpace(line) != phrase {
		return release.ErrNotConfirmed
	}
	return nil
}

// printPlans prints what each stage would send, to stdout; what says
// what the plans do ("publish 1.0.0").
func (app *App) printPlans(rep *release.UploadReport, what, colour string) {
	fmt.Fprintf(app.Out, "Plan: %s to %s\n", what, app.colour(colour, rep.Environment))
	for _, pl := range rep.Plans {
		if pl.Skipped != "" {
			fmt.Fprintf(app.Out, "\n%s: skipped: %s\n", pl.Stage, pl.Skipped)
			continue
		}
		fmt.Fprintf(app.Out, "\n%s → %s\n  %s\n", pl.Stage, pl.Dest, pl.Totals())
		if pl.Note != "" {
			fmt.Fprintf(app.Out, "  note: %s\n", pl.Note)
		}
		for _, o := range pl.Objects {
			if o.Why == plan.Present && !app.Verbose {
				continue
			}
			size := "?"
			if o.Size >= 0 {
				size = plan.Size(o.Size)
			}
			line := fmt.Sprintf("  %-8s %-9s %s  (%s)", o.Why, o.Kind, o.Key, size)
			if o.Detail != "" {
				line += ": " + o.Detail
			}
			fmt.Fprintln(app.Out, line)
		}
	}
}
