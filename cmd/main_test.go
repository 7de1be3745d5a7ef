package cmd

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests, and the rencfs processes they start, a state
// directory of their own: the list of known data dirs must not leak
// between runs, nor into the user's.
func TestMain(m *testing.M) {
	state, err := os.MkdirTemp("", "rencfs-test-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}
