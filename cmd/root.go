// Package cmd holds the rencfs command line: flags and wiring only.
package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags.
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "rencfs",
		Short:         "An encrypted filesystem in userspace",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	return root
}

// Execute runs the command line and exits non-zero on failure.
func Execute() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rencfs:", err)
		os.Exit(1)
	}
}
