// Package keyring is where secrets come from: the password from the
// environment or a terminal, and a store's secret from the OS keyring.
// It knows nothing of stores.
package keyring

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/term"
)

// EnvPassword is the environment variable a script can pass the password in.
const EnvPassword = "RENCFS_PASSWORD"

// ErrNoPassword: no password source is available.
var ErrNoPassword = errors.New("no password: set " + EnvPassword + " or run in a terminal")

// ErrMismatch: the two entries of a new password differ.
var ErrMismatch = errors.New("the passwords do not match")

// ErrEmpty: an empty password was given.
var ErrEmpty = errors.New("the password is empty")

// TakeEnv reads a password from the environment variable name and removes
// it from the process environment at once, so no child process (such as
// fusermount3) inherits it, and wipes it from the block that
// /proc/PID/environ shows. ok is false when the variable is unset.
func TakeEnv(name string) (pw []byte, ok bool, err error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, false, nil
	}
	pw = []byte(v)
	// v shares its bytes with the Go runtime's copy of the environment,
	// which the runtime keeps for the life of the process: zero them
	// there. That copy was made at start-up, in the heap, so it is
	// writable; nothing reads the variable again once it is unset.
	clear(unsafe.Slice(unsafe.StringData(v), len(v)))
	os.Unsetenv(name)
	if err := scrubProcEnviron(name); err != nil {
		return pw, true, fmt.Errorf("wipe %s from /proc/self/environ: %w", name, err)
	}
	return pw, true, nil
}

// Terminal reads passwords from the controlling terminal without echo.
type Terminal struct {
	In  *os.File // usually os.Stdin
	Out *os.File // where prompts go, usually os.Stderr
}

// Available reports whether In is a terminal.
func (t Terminal) Available() bool { return term.IsTerminal(int(t.In.Fd())) }

// Read prompts once.
func (t Terminal) Read(prompt string) ([]byte, error) {
	if !t.Available() {
		return nil, ErrNoPassword
	}
	fmt.Fprint(t.Out, prompt)
	pw, err := term.ReadPassword(int(t.In.Fd()))
	fmt.Fprintln(t.Out)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	if len(pw) == 0 {
		return nil, ErrEmpty
	}
	return pw, nil
}

// ReadNew prompts twice and checks that both entries match.
func (t Terminal) ReadNew(prompt string) ([]byte, error) {
	pw, err := t.Read(prompt)
	if err != nil {
		return nil, err
	}
	again, err := t.Read("Repeat: ")
	defer Wipe(again)
	if err != nil {
		Wipe(pw)
		return nil, err
	}
	if subtle.ConstantTimeCompare(pw, again) != 1 {
		Wipe(pw)
		return nil, ErrMismatch
	}
	return pw, nil
}

// Wipe overwrites a secret in place.
func Wipe(b []byte) { clear(b) }
