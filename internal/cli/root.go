// Package cli is releng's command line: one file per command, each turning
// flags into options and calling a plain run function. Exit codes are
// decided in one place (exitCode).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/releng-project/releng/internal/binarycache"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/runctx"
)

// Streams are the standard streams a command uses.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// App is the state shared by every command: global flags and streams.
type App struct {
	Streams
	Version    string
	Dir        string
	ConfigFile string
	JSON       bool
	Verbose    bool
	NoColor    bool

	once sync.Once
	rc   *runctx.Run // the run context, made by run()
	mu   sync.Mutex  // serialises progress output
	bars *stageBars  // per-stage bars on a terminal; nil otherwise

	stoppable atomic.Bool // the command stops cleanly (stopsCleanly)
}

// Execute runs releng with args and returns the process exit code.
func Execute(args []string, s Streams, version string) int {
	app := &App{Streams: s, Version: version}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	ctx, signalled, stop := app.handleSignals()
	defer stop()
	err := root.ExecuteContext(ctx)
	app.bars.done()
	if err != nil && signalled() {
		// Interrupted: the message says how to resume; 130 as a shell
		// reports a process ended by SIGINT.
		if errors.Is(err, runctx.ErrInterrupted) && !errors.As(err, new(*exitError)) {
			err = fmt.Errorf("%w: what was sent stays and is not sent again; run the same command again to finish", err)
		}
		err = &exitError{code: exitInterrupted, msg: err.Error()}
	}
	if err != nil {
		if msg := err.Error(); msg != "" && !isSilent(err) {
			fmt.Fprintf(s.Err, "releng: %s\n", msg)
		}
	}
	return exitCode(err)
}

// exitInterrupted is the exit code of a run stopped by SIGINT or SIGTERM.
const exitInterrupted = 130

// stopsCleanly is the annotation of the commands that honour a stop
// (runctx.WithStop): a first SIGINT or SIGTERM lets what is in flight
// finish, a second aborts. Other commands abort at the first.
const stopsCleanly = "releng/stops-cleanly"

// handleSignals makes the context of a run. A first SIGINT or SIGTERM asks
// a command that stops cleanly to stop (runctx.WithStop): it starts no new
// object, the ones in flight finish, and it returns what it did and how to
// resume; a second signal — or the first, for any other command — cancels
// the context at once. signalled reports whether a signal came.
func (app *App) handleSignals() (ctx context.Context, signalled func() bool, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopCh := make(chan struct{})
	ctx = runctx.WithStop(ctx, stopCh)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Bool
	done := make(chan struct{})
	say := func(format string, args ...any) {
		app.mu.Lock()
		defer app.mu.Unlock()
		fmt.Fprintf(app.bars.out(app.Err), "releng: "+format+"\n", args...)
	}
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		got.Store(true)
		if app.stoppable.Load() {
			close(stopCh)
			say("%s: stopping once the objects in flight are sent (again to abort at once)", signalName(sig))
			select {
			case sig = <-sigs:
			case <-done:
				return
			}
		}
		say("%s: aborting", signalName(sig))
		cancel()
	}()
	return ctx, got.Load, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func signalName(sig os.Signal) string {
	if sig == os.Interrupt {
		return "interrupt"
	}
	return sig.String()
}

func (app *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "releng",
		Short: "Cut and publish releases of Nix-built software",
		Long: `releng cuts and publishes releases of software built with Nix: release
notes, the tag dance, building the release jobs, and publishing them to a
binary cache, container registries, S3 buckets and a git remote.

EXIT STATUS
  0  success
  1  the operation failed, or a check found problems
  2  usage or configuration error
  130  interrupted (SIGINT or SIGTERM); upload, promote, yank, cache push
       and image push stop once the objects in flight are sent at the
       first, and abort at a second: run the same command again to finish`,
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			app.stoppable.Store(cmd.Annotations[stopsCleanly] != "")
			if _, ok := os.LookupEnv("NO_COLOR"); ok {
				app.NoColor = true
			}
			return nil
		},
	}
	// NAR bytes depend on the zstd encoder the binary was built with.
	root.SetVersionTemplate("releng version {{.Version}} (NARs: zstd by " + binarycache.ZstdEncoder + ")\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see `%s --help`)", err, c.CommandPath())
	})
	f := root.PersistentFlags()
	f.StringVarP(&app.Dir, "dir", "C", "", "run as if releng was started in `DIR` (the project root)")
	f.StringVar(&app.ConfigFile, "config", "", "configuration `FILE` (default: DIR/releng.toml)")
	f.BoolVar(&app.JSON, "json", false, "machine-readable output on stdout (shapes in docs/json.md)")
	f.BoolVarP(&app.Verbose, "verbose", "v", false, "log more on stderr")
	f.BoolVar(&app.NoColor, "no-color", false, "no colours in output (also NO_COLOR)")

	for _, c := range app.commands() {
		root.AddCommand(c)
	}
	return root
}

// commands is the list of registered commands; a command is listed here
// only once it works.
func (app *App) commands() []*cobra.Command {
	return []*cobra.Command{
		app.initCommand(),
		app.statusCommand(),
		app.buildCommand(),
		app.tagCommand(),
		app.keysCommand(),
		app.branchOffCommand(),
		app.notesCommand(),
		app.prepareCommand(),
		app.cacheCommand(),
		app.closureCommand(),
		app.imageCommand(),
		app.uploadCommand(),
		app.promoteCommand(),
		app.yankCommand(),
		app.verifyCommand(),
		app.demoCommand(),
	}
}

// options returns where the project is, from the global flags.
func (app *App) options() project.Options {
	return project.Options{Dir: app.Dir, ConfigFile: app.ConfigFile}
}

// openProject loads releng.toml, the version file and the git repository.
func (app *App) openProject() (*project.Project, error) {
	return project.Open(app.options())
}

// loadConfig loads only releng.toml.
func (app *App) loadConfig() (*config.Config, error) {
	return project.LoadConfig(app.options())
}

// printJSON writes v as indented JSON on stdout.
func (app *App) printJSON(v any) error {
	enc := json.NewEncoder(app.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// colour wraps s in the ANSI colour of an environment unless colours are off.
func (app *App) colour(name, s string) string {
	codes := map[string]string{"black": "30", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "white": "37"}
	code, ok := codes[name]
	if app.NoColor || !ok || !isTerminal(app.Out) {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
