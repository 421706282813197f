// Command releng cuts and publishes releases of Nix-built software.
package main

import (
	"os"

	"github.com/releng-project/releng/internal/cli"
)

// version is stamped at build time: -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(cli.Execute(os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, version))
}
