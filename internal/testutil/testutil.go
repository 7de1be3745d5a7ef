// Package testutil holds helpers shared by the tests of several packages.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// RequireFUSE fails (never skips) in CI when FUSE is missing, and skips
// with the reason elsewhere.
func RequireFUSE(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("fusermount3")
	if err == nil {
		_, err = os.Stat("/dev/fuse")
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("FUSE is required in CI: %v", err)
	}
	t.Skipf("FUSE unavailable: %v", err)
}

// RequireKeyringSession fails in CI and skips elsewhere unless the test
// runs inside scripts/with-keyring.sh, whose gnome-keyring serves the
// Secret Service.
func RequireKeyringSession(t testing.TB) {
	t.Helper()
	if os.Getenv("RENCFS_KEYRING_SESSION") != "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs a Secret Service: run it through scripts/with-keyring.sh (make test does)")
	}
	t.Skip("no Secret Service session (run through scripts/with-keyring.sh)")
}

// SyncBuffer is a log sink tests can read while others write to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
