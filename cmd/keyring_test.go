package cmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
	"github.com/rencfs/rencfs/internal/testutil"
	"github.com/rencfs/rencfs/keyring"
)

// TestKeyringRemount: while mounted the keyring holds a secret that opens
// this store (not the password); the idle wipe restores the key from it;
// a remount after a crash uses it without any password source; a clean
// unmount removes it; and it dies with passwd.
func TestKeyringRemount(t *testing.T) {
	testutil.RequireFUSE(t)
	testutil.RequireKeyringSession(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	account, err := keyring.Account(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keyring.OS{}.Delete(account) })

	p := startMount(t, bin, mnt, data, "--keyring", "always", "--idle-timeout", "1s", "--log-level", "DEBUG")
	secret, err := keyring.OS{}.Get(account)
	if err != nil {
		t.Fatalf("keyring while mounted: %v", err)
	}
	if bytes.Contains(secret, []byte("cli test password")) || len(secret) != 32 {
		t.Fatalf("the keyring holds %d bytes, not a 32-byte store secret", len(secret))
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// After the idle wipe, an access restores the key from the keyring.
	waitLog(t, p, "master key wiped after idle")
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "x" {
		t.Fatalf("read after the wipe: %q %v", got, err)
	}
	waitLog(t, p, "from=keyring")
	p.cmd.Process.Kill() // a crash: the entry stays
	<-p.exited
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })

	cmd := exec.Command(bin, "mount", "-m", mnt, "-d", data, "--umount-on-start")
	cmd.Env = append(minimalEnv(), "DBUS_SESSION_BUS_ADDRESS="+os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
	p = startCmd(t, cmd, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "x" {
		t.Fatalf("after a keyring remount: %q %v", got, err)
	}
	p.stop(t)
	if _, err := (keyring.OS{}).Get(account); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("keyring after unmount: %v", err)
	}

	// A secret left by a crash dies with the password: passwd removes it,
	// and it no longer opens the store anyway.
	if err := (keyring.OS{}).Set(account, secret); err != nil {
		t.Fatal(err)
	}
	pc := exec.Command(bin, "passwd", "-d", data)
	pc.Env = append(os.Environ(), "RENCFS_PASSWORD=cli test password", "RENCFS_NEW_PASSWORD=changed")
	if out, err := pc.CombinedOutput(); err != nil {
		t.Fatalf("passwd: %v: %s", err, out)
	}
	if _, err := (keyring.OS{}).Get(account); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("keyring after passwd: %v", err)
	}
	st, err := storage.OpenDir(data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := encrypted.UnlockSecret(st, secret, encrypted.Options{}); !errors.Is(err, encrypted.ErrWrongPassword) {
		t.Fatalf("old secret after passwd: %v", err)
	}
}

// waitLog waits up to 10 s for the mount's log to contain s.
func waitLog(t *testing.T, p *mountProc, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 10 s:\n%s", s, p.log())
		}
	}
}

// TestOneProcessPerDataDir: a second mount of a mounted data dir, and a
// passwd on it, fail with exit code 4 and a line naming the holder's pid;
// the first mount goes on serving.
func TestOneProcessPerDataDir(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	p := startMount(t, bin, mnt, data, "--keyring", "never")
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := p.cmd.Process.Pid
	for name, args := range map[string][]string{
		"mount":  {"mount", "-m", t.TempDir(), "-d", data, "--keyring", "never"},
		"passwd": {"passwd", "-d", data},
	} {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "RENCFS_PASSWORD=cli test password", "RENCFS_NEW_PASSWORD=other")
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitStore {
			t.Fatalf("%s of a mounted store: %v: %s", name, err, out)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "process "+itoa(pid)) {
			t.Fatalf("%s: want one line naming pid %d, got:\n%s", name, pid, out)
		}
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "one" {
		t.Fatalf("first mount after the refusals: %q %v", got, err)
	}
	p.stop(t)
}
