// Package cli is releng's command line: one file per command, each turning
// flags into options and calling a plain run function. Exit codes are
// decided in one place (exitCode).
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

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
}

// Execute runs releng with args and returns the process exit code.
func Execute(args []string, s Streams, version string) int {
	app := &App{Streams: s, Version: version}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	app.bars.done()
	if err != nil {
		if msg := err.Error(); msg != "" && !isSilent(err) {
			fmt.Fprintf(s.Err, "releng: %s\n", msg)
		}
	}
	return exitCode(err)
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
  2  usage or configuration error`,
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := os.LookupEnv("NO_COLOR"); ok {
				app.NoColor = true
			}
			return nil
		},
	}
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
		app.branchOffCommand(),
		app.notesCommand(),
		app.prepareCommand(),
		app.cacheCommand(),
		app.closureCommand(),
		app.imageCommand(),
		app.uploadCommand(),
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
