package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/releng-project/releng/internal/plan"
	"github.com/releng-project/releng/internal/release"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/runctx"
)

// run is the context of this run, handed to every stage: releng's version,
// the cache directory, progress rendered on stderr (a line per event; JSON
// lines under --json) and the confirmation prompt on the terminal.
func (app *App) run() *runctx.Run {
	var mu sync.Mutex
	return &runctx.Run{
		Version:  app.Version,
		CacheDir: runctx.DefaultCacheDir(),
		Events: func(e runctx.Event) {
			mu.Lock()
			defer mu.Unlock()
			app.renderEvent(e)
		},
		Confirm: app.confirm,
	}
}

func (app *App) renderEvent(e runctx.Event) {
	if app.JSON {
		data, _ := json.Marshal(e)
		fmt.Fprintf(app.Err, "%s\n", data)
		return
	}
	prefix := "releng: "
	if e.Stage != "" {
		prefix += e.Stage + ": "
	}
	switch e.Kind {
	case runctx.Warning:
		fmt.Fprintf(app.Err, "%swarning: %s\n", prefix, e.Message)
	case runctx.Object:
		if app.Verbose {
			fmt.Fprintf(app.Err, "%ssent %s (%s)\n", prefix, e.Object, plan.Size(e.Bytes))
		}
	case runctx.StageStart:
		fmt.Fprintf(app.Err, "%s%s\n", prefix, e.Message)
	case runctx.StageDone:
		fmt.Fprintf(app.Err, "%sdone: %s\n", prefix, e.Message)
	default:
		fmt.Fprintf(app.Err, "%s%s\n", prefix, e.Message)
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

// printPlans prints what each stage would send, to stdout.
func (app *App) printPlans(rep *release.UploadReport, colour string) {
	fmt.Fprintf(app.Out, "Plan: publish %s to %s\n", rep.Version, app.colour(colour, rep.Environment))
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
