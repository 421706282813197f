package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/releng-project/releng/internal/config"
	"github.com/releng-project/releng/internal/versionfile"
)

// usageError is a wrong invocation: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit code; with an empty message nothing more is
// printed (the command already reported, e.g. `notes check`).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func isSilent(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.msg == ""
}

// exitCode maps an error to the process exit code, in one place:
// 0 success, 2 usage or configuration, 1 everything else.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	var ue *usageError
	var ce *config.Error
	var ve *versionfile.Error
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &ve):
		return 2
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "accepts "), strings.HasPrefix(err.Error(), "requires at least"):
		// cobra's own usage errors.
		return 2
	}
	return 1
}
