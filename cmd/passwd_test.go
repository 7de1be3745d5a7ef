package cmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/internal/testutil"
)

func TestPasswd(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	fs, err := testutil.CreateStore(data, []byte("old pw"), encrypted.Options{KDF: testutil.TestKDF})
	if err != nil {
		t.Fatal(err)
	}
	a, err := fs.Create(encrypted.RootIno, "f", 0o644, encrypted.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	fs.Write(a.Ino, []byte("content"), 0)
	fs.Close()
	header := filepath.Join(data, encrypted.HeaderName)
	before, _ := os.ReadFile(header)

	passwd := func(env ...string) (int, string) {
		cmd := exec.Command(bin, "passwd", "-d", data)
		cmd.Env = append(minimalEnv(), env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := passwd("RENCFS_PASSWORD=wrong", "RENCFS_NEW_PASSWORD=new pw"); code != exitWrongPassword || !strings.Contains(out, "wrong password") {
		t.Fatalf("wrong old password: exit %d: %s", code, out)
	}
	if now, _ := os.ReadFile(header); !bytes.Equal(now, before) {
		t.Fatal("header changed after a wrong old password")
	}
	if code, out := passwd("RENCFS_PASSWORD=old pw"); code != exitUsage || !strings.Contains(out, "no password") {
		t.Fatalf("no new password source: exit %d: %s", code, out)
	}
	if code, out := passwd("RENCFS_PASSWORD=old pw", "RENCFS_NEW_PASSWORD=new pw"); code != 0 || !strings.Contains(out, "password of") {
		t.Fatalf("passwd: exit %d: %s", code, out)
	}
	if _, err := testutil.UnlockStore(data, []byte("old pw"), encrypted.Options{}); !errors.Is(err, encrypted.ErrWrongPassword) {
		t.Fatalf("old password after passwd: %v", err)
	}
	fs, err = testutil.UnlockStore(data, []byte("new pw"), encrypted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	buf := make([]byte, 7)
	if n, err := fs.Read(a.Ino, buf, 0); err != nil || string(buf[:n]) != "content" {
		t.Fatalf("content after passwd: %q %v", buf[:n], err)
	}
}
