package cmd

import (
	"bytes"
	"encoding/binary"
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

// TestPasswdKDFFlags: out-of-range KDF costs are refused before any
// arithmetic or password prompt (4,194,305 MiB once wrapped to 8 MiB
// through uint32), a cost below 64 MiB is applied with a warning, and the
// header then carries exactly the costs asked for.
func TestPasswdKDFFlags(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	fs, err := testutil.CreateStore(data, []byte("pw"), encrypted.Options{KDF: testutil.TestKDF})
	if err != nil {
		t.Fatal(err)
	}
	fs.Close()
	header := filepath.Join(data, encrypted.HeaderName)
	before, _ := os.ReadFile(header)
	passwd := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"passwd", "-d", data}, args...)...)
		cmd.Env = append(minimalEnv(), "RENCFS_PASSWORD=pw", "RENCFS_NEW_PASSWORD=pw2")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	for _, bad := range [][]string{
		{"--kdf-memory", "4194305"}, {"--kdf-memory", "18446744073709551615"}, {"--kdf-memory", "7"},
		{"--kdf-memory", "2048"}, {"--kdf-time", "0"}, {"--kdf-time", "11"},
	} {
		code, out := passwd(bad...)
		if code != exitUsage || !strings.Contains(out, "out of range") {
			t.Fatalf("%v: exit %d: %s", bad, code, out)
		}
		if now, _ := os.ReadFile(header); !bytes.Equal(now, before) {
			t.Fatalf("%v changed the header", bad)
		}
	}
	code, out := passwd("--kdf-memory", "9", "--kdf-time", "2")
	if code != 0 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "below 64 MiB") {
		t.Fatalf("low memory: exit %d: %s", code, out)
	}
	b, _ := os.ReadFile(header)
	if got := [2]uint32{binary.BigEndian.Uint32(b[11:15]), binary.BigEndian.Uint32(b[15:19])}; got != [2]uint32{2, 9 << 10} {
		t.Fatalf("header costs %v, want 2 passes and 9 MiB", got)
	}
	// Above the default limit only with --allow-slow-kdf.
	cmd := exec.Command(bin, "passwd", "-d", data, "--kdf-time", "11", "--allow-slow-kdf")
	cmd.Env = append(minimalEnv(), "RENCFS_PASSWORD=pw2", "RENCFS_NEW_PASSWORD=pw3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("--allow-slow-kdf: %v: %s", err, out)
	}
}
