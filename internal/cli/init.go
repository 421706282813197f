package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/fsutil"
)

type initOptions struct {
	name  string
	force bool
}

func (app *App) initCommand() *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented releng.toml",
		Long: `Write a commented releng.toml in the project directory (-C DIR, default the
working directory). name defaults to the directory's name.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.runInit(opts)
		},
	}
	cmd.Flags().StringVar(&opts.name, "name", "", "project name (default: the directory's name)")
	cmd.Flags().BoolVar(&opts.force, "force", false, "overwrite an existing releng.toml")
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
	return nil
}

// noArgs rejects positional arguments as a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q (see `%s --help`)", cmd.CommandPath(), args, cmd.CommandPath())
	}
	return nil
}
