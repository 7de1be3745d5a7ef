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

// minimalEnv is the environment of a rencfs run by a script that passes
// nearly nothing: a PATH, and this test run's state dir.
func minimalEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "XDG_STATE_HOME=" + os.Getenv("XDG_STATE_HOME")}
}
