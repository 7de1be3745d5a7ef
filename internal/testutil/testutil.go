// Package testutil holds helpers shared by the tests of several packages.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
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

// TestKDF keeps unlocking cheap in tests: the least Argon2id the format allows.
var TestKDF = encrypted.KDFParams{Time: 1, MemoryKiB: encrypted.MinKDFMemoryKiB, Threads: 1}

// CreateStore makes a store in the local directory dir, as mount does.
func CreateStore(dir string, password []byte, opt encrypted.Options) (*encrypted.FS, error) {
	return inDir(dir, func(st storage.Storage) (*encrypted.FS, []byte, error) { return encrypted.Create(st, password, opt) })
}

// UnlockStore unlocks the store in the local directory dir.
func UnlockStore(dir string, password []byte, opt encrypted.Options) (*encrypted.FS, error) {
	return inDir(dir, func(st storage.Storage) (*encrypted.FS, []byte, error) { return encrypted.Unlock(st, password, opt) })
}

// inDir opens the storage of dir and the store in it with open, closing
// the storage if that fails, and wipes the store secret.
func inDir(dir string, open func(storage.Storage) (*encrypted.FS, []byte, error)) (*encrypted.FS, error) {
	st, err := storage.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	fs, secret, err := open(st)
	clear(secret)
	if err != nil {
		st.Close()
		return nil, err
	}
	return fs, nil
}
