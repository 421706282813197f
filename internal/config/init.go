package config

import (
	_ "embed"
	"strings"
)

//go:embed releng.toml.tmpl
var initTemplate string

// InitFile returns the commented releng.toml that `releng init` writes: only
// name is set, every other key is shown commented out at its default.
func InitFile(name string) string {
	title := name
	if name != "" {
		title = strings.ToUpper(name[:1]) + name[1:]
	}
	return strings.NewReplacer("@NAME@", name, "@TITLE@", title).Replace(initTemplate)
}
