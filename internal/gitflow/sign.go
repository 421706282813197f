package gitflow

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/releng-project/releng/internal/project"
	"github.com/releng-project/releng/internal/signing"
)

// tagKey loads the release key that signs the tag (SPEC §11.1): the
// release_key of opts.Environment, or of the default environment when
// none is named; nil when that environment has none. It is loaded — its
// mode and format checked — before the tag dance changes anything.
func tagKey(p *project.Project, opts TagOptions) (*signing.PrivateKey, error) {
	env, err := p.Config.Environment(opts.Environment)
	if err != nil {
		return nil, err
	}
	if env.ReleaseKey == "" {
		return nil, nil
	}
	k, err := signing.LoadPrivateKeyFile(p.Config.Abs(env.ReleaseKey), opts.AllowInsecureKey)
	if err != nil {
		return nil, fmt.Errorf("environments.%s.release_key signs the tag: %w", env.Name, err)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return nil, fmt.Errorf("environments.%s.release_key signs the tag, which git does with ssh-keygen: install it (apt-get install openssh-client)", env.Name)
	}
	return k, nil
}

// signedTag makes the annotated tag name at HEAD signed with key, by git
// itself (gpg.format=ssh, user.signingKey the key file), then checks the
// signature git wrote.
func signedTag(ctx context.Context, p *project.Project, key *signing.PrivateKey, name, message string, force bool) error {
	args := []string{"-c", "gpg.format=ssh", "-c", "user.signingKey=" + key.File, "-c", "gpg.ssh.program=ssh-keygen",
		"tag", "-s", "-m", message}
	if force {
		args = append(args, "-f")
	}
	if err := p.Git.Run(ctx, append(args, "--", name)...); err != nil {
		return err
	}
	obj, err := p.Git.Output(ctx, "cat-file", "tag", "refs/tags/"+name)
	if err != nil {
		return err
	}
	if err := key.Public().VerifyTag([]byte(obj)); err != nil {
		return fmt.Errorf("the tag git signed does not verify with %s: %w", key.File, err)
	}
	return nil
}
