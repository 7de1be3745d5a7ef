package fusefs

import (
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/internal/testutil"
)

var testPassword = []byte("fuse test password")

type testMount struct {
	mnt, data string
	logs      *testutil.SyncBuffer
	m         *Mounted
	core      *encrypted.FS
	opt       Options
}

// mountT makes a new store and mounts it in t.TempDir(); it is unmounted
// in t.Cleanup.
func mountT(t *testing.T, c encrypted.Cipher, opt Options) *testMount {
	t.Helper()
	testutil.RequireFUSE(t)
	data := t.TempDir()
	core, err := testutil.CreateStore(data, testPassword, encrypted.Options{Cipher: c, KDF: testutil.TestKDF})
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMount{mnt: t.TempDir(), data: data, logs: &testutil.SyncBuffer{}, opt: opt, core: core}
	tm.mount(t)
	return tm
}

func (tm *testMount) mount(t *testing.T) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tm.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := Mount(tm.mnt, tm.core, tm.opt, log)
	if err != nil {
		t.Fatal(err)
	}
	tm.m = m
	t.Cleanup(func() { tm.unmount(t) })
}

func (tm *testMount) unmount(t *testing.T) {
	if tm.m == nil {
		return
	}
	if err := tm.m.Unmount(10 * time.Second); err != nil {
		t.Errorf("unmount: %v", err)
	}
	tm.m = nil
	if err := tm.core.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// remount unmounts, unlocks the data dir afresh and mounts again.
func (tm *testMount) remount(t *testing.T) {
	t.Helper()
	tm.unmount(t)
	core, err := testutil.UnlockStore(tm.data, testPassword, encrypted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tm.core = core
	tm.mount(t)
}

func (tm *testMount) path(p ...string) string {
	return filepath.Join(append([]string{tm.mnt}, p...)...)
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestGoFuseLogLevels: go-fuse's routine messages go to DEBUG, its
// failures to ERROR, none to WARN.
func TestGoFuseLogLevels(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	w := slogWriter{slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for msg, level := range map[string]string{
		"trySplice: splice: write: resource temporarily unavailable":   "DEBUG",
		"Unimplemented opcode IOCTL":                                   "DEBUG",
		`callFusermount: executing ["/bin/fusermount3"]`:               "DEBUG",
		"writer: Write/Writev failed, err: no such file. opcode: READ": "ERROR",
		"Failed to read from fuse conn: 5":                             "ERROR",
		"request too short: [12]":                                      "ERROR",
	} {
		before := len(logs.String())
		w.Write([]byte(msg + "\n"))
		if got := logs.String()[before:]; !strings.Contains(got, "level="+level) {
			t.Errorf("%q logged as %s", msg, got)
		}
	}
}
