// Package cmd holds the rencfs command line: flags and wiring only.
package cmd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/fusefs"
	"github.com/rencfs/rencfs/keyring"
)

// version is set at build time with -ldflags.
var version = "dev"

// Exit codes, one per class of failure.
const (
	exitFailure       = 1 // anything not below
	exitUsage         = 2 // bad flags or arguments
	exitWrongPassword = 3 // the password does not open the store
	exitStore         = 4 // data dir missing, not a store, corrupt, or of a newer format
	exitMount         = 5 // FUSE unavailable, mount point unusable
)

// exitError carries the exit code of a failure class.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code, err}
}

// exitCode picks the code for err.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, encrypted.ErrWrongPassword):
		return exitWrongPassword
	case errors.Is(err, keyring.ErrNoPassword), errors.Is(err, keyring.ErrMismatch), errors.Is(err, keyring.ErrEmpty):
		return exitUsage
	}
	// Cobra's own argument errors carry no type to test.
	for _, p := range []string{"required flag", "unknown command", "unknown flag", "accepts ", "invalid argument"} {
		if strings.HasPrefix(err.Error(), p) {
			return exitUsage
		}
	}
	var ve *encrypted.VersionError
	if errors.Is(err, encrypted.ErrCorrupt) || errors.Is(err, encrypted.ErrNotStore) || errors.As(err, &ve) {
		return exitStore
	}
	return exitFailure
}

// app is the state shared by the subcommands.
type app struct {
	logLevel string
	log      *slog.Logger
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "rencfs",
		Short: "An encrypted filesystem in userspace",
		Long: "rencfs mounts a directory whose every byte is kept encrypted in a data directory:\n" +
			"contents, names, sizes, times, modes, link targets and the tree.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			lvl, err := parseLevel(a.logLevel)
			if err != nil {
				return withCode(exitUsage, err)
			}
			a.log = newLogger(lvl)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "INFO", "log level: TRACE, DEBUG, INFO, WARN or ERROR")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath()))
	})
	root.AddCommand(newMount(a), newPasswd(a), newUmount(a))
	return root
}

// NewRoot is the rencfs command tree, for tools that document it (man pages).
func NewRoot() *cobra.Command { return newRoot() }

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(s) {
	case "TRACE":
		return fusefs.LevelTrace, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want TRACE, DEBUG, INFO, WARN or ERROR)", s)
}

func newLogger(lvl slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		Level: lvl,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && a.Value.Any() == fusefs.LevelTrace {
				a.Value = slog.StringValue("TRACE")
			}
			return a
		},
	}))
}

// Execute runs the command line and exits non-zero on failure.
func Execute() {
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rencfs:", oneLine(err))
		os.Exit(exitCode(err))
	}
}

// oneLine keeps an error message to one line.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}
