package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/example"
	"github.com/releng-project/releng/internal/fsutil"
)

type initOptions struct {
	name    string
	force   bool
	example bool
}

func (app *App) initCommand() *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented releng.toml",
		Long: `Write a commented releng.toml in the project directory (-C DIR, default the
working directory). name defaults to the directory's name.

With --example, write instead a small example project that can be released
end to end with nothing but Nix installed: a flake with no inputs whose
derivations build with /bin/sh, version.json, release-note fragments, an
authors file and its releng.toml.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.runInit(opts)
		},
	}
	cmd.Flags().StringVar(&opts.name, "name", "", "project name (default: the directory's name)")
	cmd.Flags().BoolVar(&opts.force, "force", false, "overwrite existing files")
	cmd.Flags().BoolVar(&opts.example, "example", false, "write the example project (flake, fragments, authors file, releng.toml)")
	return cmd
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

func (app *App) runInit(opts initOptions) error {
	dir := app.Dir
	if dir == "" {
		dir = "."
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if opts.example {
		if opts.name != "" {
			return usageErrorf("--example writes the project \"hello\"; it takes no --name")
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		paths, err := example.Write(dir, opts.force)
		if err != nil {
			return err
		}
		fmt.Fprintf(app.Out, "wrote the example project (%d files) in %s\n", len(paths), dir)
		fmt.Fprintf(app.Out, "next: git init && git add -A && git commit -m init, then releng prepare, releng tag, releng build\n")
		return nil
	}
	name := opts.name
	if name == "" {
		name = filepath.Base(dir)
	}
	if !nameRe.MatchString(name) {
		return usageErrorf("project name %q: use letters, digits, '.', '_', '+' and '-' (pass --name NAME)", name)
	}
	path := app.ConfigFile
	if path == "" {
		path = filepath.Join(dir, config.FileName)
	}
	if _, err := os.Stat(path); err == nil && !opts.force {
		return usageErrorf("%s already exists; pass --force to overwrite it", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := config.InitFile(name)
	if _, err := config.Parse([]byte(text), path, dir); err != nil {
		return fmt.Errorf("internal error: the generated configuration does not load: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "wrote %s\n", path)
	fmt.Fprintf(app.Out, "to sign releases: releng keys generate --environment ENV --output FILE (prints the release_key lines and how users verify)\n")
	return nil
}

// noArgs rejects positional arguments as a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q (see `%s --help`)", cmd.CommandPath(), args, cmd.CommandPath())
	}
	return nil
}
