package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/releng-project/releng/internal/image/registry"
	"github.com/releng-project/releng/internal/signing"
)

func (app *App) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Release keys: generate the key pair that signs releases",
		Args:  noArgs,
	}
	cmd.AddCommand(app.keysGenerateCommand())
	return cmd
}

// keysReport is what `releng keys generate --json` prints (docs/signing.md).
type keysReport struct {
	Environment string `json:"environment"`
	signing.KeyFiles
	PublicKey       string `json:"public_key"`
	Fingerprint     string `json:"fingerprint"`
	CosignPublicKey string `json:"cosign_public_key"`
	// Config are the releng.toml lines of the environment.
	Config []string `json:"config"`
	// Verify are the commands users run to check a release.
	Verify []verifyCommand `json:"verify"`
}

type verifyCommand struct {
	What    string `json:"what"`
	Command string `json:"command"`
}

func (app *App) keysGenerateCommand() *cobra.Command {
	var env, output string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a release key pair and say how users verify releases",
		Long: `Write a new ed25519 release key pair for an environment (SPEC §11.1):

  FILE             the private key, an OpenSSH private key (mode 0600),
                   as ssh-keygen -t ed25519 writes it: set release_key = FILE
  FILE.pub         its public key line: set release_public_key
  FILE.cosign.pub  the same public key as PEM, for cosign verify --key

FILE is --output, or the environment's release_key. No existing file is
replaced. The private key is never printed. Then it prints the public key,
the releng.toml lines and the commands users run to check a release
offline: ssh-keygen -Y verify for SHA256SUMS.sig, git verify-tag for the
tag, cosign verify for the images.

EXIT STATUS
  0  written
  1  a file exists or cannot be written
  2  usage or configuration error`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := app.openProject()
			if err != nil {
				return err
			}
			e, err := p.Config.Environment(env)
			if err != nil {
				return err
			}
			file := output
			if file == "" {
				file = e.ReleaseKey
			}
			if file == "" {
				return usageErrorf("environments.%s has no release_key: pass --output FILE (outside the repository, or git-ignored), then set release_key = \"FILE\" there", e.Name)
			}
			abs := p.Config.Abs(file)
			principal := p.Config.Name + "-release"
			files, pub, err := signing.GenerateFiles(abs, principal+"-"+e.Name)
			if err != nil {
				return err
			}
			var repos []string
			for _, t := range e.Images {
				if d, err := registry.ParseDest(t.Repository, p.Root); err == nil && d.Repository != "" {
					repos = append(repos, d.Repository)
				}
			}
			if len(repos) == 0 {
				repos = []string{"REGISTRY/REPOSITORY"}
			}
			rep := keysReport{Environment: e.Name, KeyFiles: files, PublicKey: pub.String(), Fingerprint: pub.Fingerprint(),
				CosignPublicKey: string(pub.PEM()),
				Config: []string{
					fmt.Sprintf("release_key = %q", file),
					fmt.Sprintf("release_public_key = %q", pub.String()),
				},
				Verify: verifyCommands(principal, pub, repos)}
			if app.JSON {
				return app.printJSON(rep)
			}
			app.printKeys(rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "environment", "", "environment the key is for (default: default_environment)")
	cmd.Flags().StringVar(&output, "output", "", "private key file to write (default: the environment's release_key)")
	return cmd
}

// verifyCommands are the commands a user runs, in the directory of a
// downloaded release, to check it with the public key alone.
func verifyCommands(principal string, pub signing.PublicKey, repos []string) []verifyCommand {
	out := []verifyCommand{
		{"trust the public key (once)", fmt.Sprintf("echo '%s %s' > allowed_signers", principal, pub.String())},
		{"SHA256SUMS is the project's, then the files are what it lists", fmt.Sprintf("ssh-keygen -Y verify -f allowed_signers -I %s -n %s -s SHA256SUMS.sig < SHA256SUMS && sha256sum -c SHA256SUMS", principal, signing.NamespaceFile)},
		{"the release tag (in a clone)", "git -c gpg.ssh.allowedSignersFile=allowed_signers verify-tag VERSION"},
	}
	for _, r := range repos {
		out = append(out, verifyCommand{"an image (cosign.pub: the PEM public key)", fmt.Sprintf("cosign verify --key cosign.pub --insecure-ignore-tlog %s:VERSION", r)})
	}
	return out
}

func (app *App) printKeys(rep keysReport) {
	out := app.Out
	fmt.Fprintf(out, "wrote the release key pair of environment %s:\n", rep.Environment)
	fmt.Fprintf(out, "  private key  %s (mode 0600: keep it secret and out of git)\n", rep.Private)
	fmt.Fprintf(out, "  public key   %s\n", rep.Public)
	fmt.Fprintf(out, "  for cosign   %s\n", rep.Cosign)
	fmt.Fprintf(out, "public key: %s\nfingerprint: %s\n\n", rep.PublicKey, rep.Fingerprint)
	fmt.Fprintf(out, "in releng.toml, [environments.%s]:\n", rep.Environment)
	for _, l := range rep.Config {
		fmt.Fprintf(out, "  %s\n", l)
	}
	fmt.Fprintf(out, "\npublish the public key (README, website); users check a release with it, offline:\n")
	for _, v := range rep.Verify {
		fmt.Fprintf(out, "  # %s\n  %s\n", v.What, v.Command)
	}
	fmt.Fprintf(out, "\ncosign.pub (%s):\n%s", filepath.Base(rep.Cosign), strings.TrimRight(rep.CosignPublicKey, "\n")+"\n")
}
