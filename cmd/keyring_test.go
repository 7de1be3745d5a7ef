package cmd

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rencfs/rencfs/internal/testutil"
	"github.com/rencfs/rencfs/keyring"
)

// TestKeyringRemount: while mounted the password is in the OS keyring; a
// remount after a crash uses it without any password source; a clean
// unmount removes it.
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

	p := startMount(t, bin, mnt, data, "--keyring", "always")
	if got, err := (keyring.OS{}).Get(account); err != nil || string(got) != "cli test password" {
		t.Fatalf("keyring while mounted: %q %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Kill() // a crash: the entry stays
	<-p.exited
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })

	cmd := exec.Command(bin, "mount", "-m", mnt, "-d", data, "--umount-on-start")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}
	p = startCmd(t, cmd, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "x" {
		t.Fatalf("after a keyring remount: %q %v", got, err)
	}
	p.stop(t)
	if _, err := (keyring.OS{}).Get(account); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("keyring after unmount: %v", err)
	}
}
