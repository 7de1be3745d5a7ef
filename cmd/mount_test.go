package cmd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rencfs/rencfs/internal/testutil"
)

// buildBinary compiles rencfs once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rencfs")
	out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// mountProc is a running "rencfs mount".
type mountProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex // guards stderr, which the process writes meanwhile
	stderr *bytes.Buffer
	exited chan error
}

// startMount runs rencfs mount and waits for its ready line.
func startMount(t *testing.T, bin, mnt, data string, extra ...string) *mountProc {
	t.Helper()
	args := append([]string{"mount", "-m", mnt, "-d", data}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "RENCFS_PASSWORD=cli test password")
	return startCmd(t, cmd, mnt)
}

// startCmd starts a prepared rencfs mount command and waits for its ready line.
func startCmd(t *testing.T, cmd *exec.Cmd, mnt string) *mountProc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &mountProc{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				exec.Command("fusermount3", "-u", "-z", mnt).Run()
				cmd.Process.Kill()
			}
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		p.exited <- cmd.Wait()
	}()
	select {
	case line, ok := <-ready:
		if !ok || !strings.Contains(line, "mounted") {
			t.Fatalf("no ready line (got %q); stderr:\n%s", line, p.log())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("mount not ready after 60 s; stderr:\n%s", p.log())
	}
	return p
}

// log is what the mount wrote to stderr so far.
func (p *mountProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *mountProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func itoa(i int) string { return fmt.Sprint(i) }

// stop sends SIGTERM and expects a clean exit.
func (p *mountProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("rencfs mount exited with %v; stderr:\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rencfs mount did not exit after SIGTERM; stderr:\n%s", p.log())
	}
}

func TestMountSigtermRemount(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data") // missing: created and initialized
	mnt := t.TempDir()
	p := startMount(t, bin, mnt, data)
	// The password is gone from the mount process's environment.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("RENCFS_PASSWORD")) || bytes.Contains(env, []byte("cli test password")) {
		t.Fatal("RENCFS_PASSWORD is still in the mount process's environment")
	}
	want := map[string]string{"a.txt": "alpha", "dir/b.txt": strings.Repeat("beta", 100000)}
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range want {
		if err := os.WriteFile(filepath.Join(mnt, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.stop(t)
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Fatalf("mount point still shows %d entries after SIGTERM", len(ents))
	}

	p = startMount(t, bin, mnt, data)
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || string(got) != content {
			t.Fatalf("%s after remount: %v (%d bytes)", name, err, len(got))
		}
	}
	// rencfs umount from another process ends the mount cleanly too.
	if out, err := exec.Command(bin, "umount", "-m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("rencfs umount: %v: %s", err, out)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("mount after rencfs umount: %v; stderr:\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mount still running 30 s after rencfs umount")
	}
	if out, err := exec.Command(bin, "umount", "-m", mnt).CombinedOutput(); err == nil || !strings.Contains(string(out), "not mounted") {
		t.Fatalf("umount of nothing: %v: %s", err, out)
	}
}

func TestMountErrors(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	startMount(t, bin, mnt, data).stop(t) // creates the store

	notStore := t.TempDir()
	os.WriteFile(filepath.Join(notStore, "file"), nil, 0o644)
	cases := []struct {
		name string
		env  string
		args []string
		code int
		msg  string
	}{
		{"wrong password", "RENCFS_PASSWORD=wrong", []string{"mount", "-m", mnt, "-d", data}, exitWrongPassword, "wrong password"},
		{"no password", "", []string{"mount", "-m", mnt, "-d", data}, exitUsage, "no password"},
		{"missing mount point", "RENCFS_PASSWORD=x", []string{"mount", "-m", mnt + "/nope", "-d", data}, exitMount, "does not exist"},
		{"not a store", "RENCFS_PASSWORD=x", []string{"mount", "-m", mnt, "-d", notStore}, exitStore, "not a rencfs data dir"},
		{"bad flag", "", []string{"mount", "--bogus"}, exitUsage, "unknown flag"},
		{"missing flag", "", []string{"mount", "-m", mnt}, exitUsage, "data-dir"},
		{"bad cipher", "RENCFS_PASSWORD=x", []string{"mount", "-m", mnt, "-d", data, "--cipher", "rot13"}, exitUsage, "unknown cipher"},
		{"other cipher", "RENCFS_PASSWORD=cli test password", []string{"mount", "-m", mnt, "-d", data, "--cipher", "aes256gcm"}, exitUsage, "uses chacha20poly1305"},
		{"bad log level", "", []string{"--log-level", "LOUD", "mount", "-m", mnt, "-d", data}, exitUsage, "log level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = minimalEnv()
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			cmd.Stdin = nil // not a terminal
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("exit %v, want code %d; output: %s", err, c.code, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.msg) {
				t.Fatalf("want one line containing %q, got:\n%s", c.msg, out)
			}
		})
	}
}

// TestStaleMount kills a mount with SIGKILL, sees the dead mount refused
// with advice, and remounts over it with --umount-on-start.
func TestStaleMount(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	p := startMount(t, bin, mnt, data)
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("survives"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mnt, "f")) // close(2) flushes: make sure it is on disk
	if err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	p.cmd.Process.Kill()
	<-p.exited
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })

	cmd := exec.Command(bin, "mount", "-m", mnt, "-d", data)
	cmd.Env = append(minimalEnv(), "RENCFS_PASSWORD=cli test password")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitMount || !strings.Contains(string(out), "--umount-on-start") {
		t.Fatalf("mount over a dead mount: %v: %s", err, out)
	}
	p = startMount(t, bin, mnt, data, "--umount-on-start")
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "survives" {
		t.Fatalf("after remount: %q %v", got, err)
	}
	p.stop(t)
}

func TestNewerFormatRefused(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	startMount(t, bin, mnt, data).stop(t)
	hdr := filepath.Join(data, "rencfs.header")
	b, err := os.ReadFile(hdr)
	if err != nil {
		t.Fatal(err)
	}
	b[7] = 2 // format version 2
	if err := os.WriteFile(hdr, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "mount", "-m", mnt, "-d", data)
	cmd.Env = append(minimalEnv(), "RENCFS_PASSWORD=cli test password")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitStore || !strings.Contains(string(out), "version 2 is newer than this rencfs supports (version 1)") {
		t.Fatalf("newer format: %v: %s", err, out)
	}
}

// TestServeProcs: a mount serves with at least minServeProcs Ps, more
// when there are more CPUs, and exactly what GOMAXPROCS says when set.
func TestServeProcs(t *testing.T) {
	for _, c := range []struct {
		env           string
		current, want int
	}{
		{"", 1, minServeProcs},
		{"", 2, minServeProcs},
		{"", 32, 32},
		{"2", 2, 2},
		{"1", 1, 1},
	} {
		if got := serveProcs(c.env, c.current); got != c.want {
			t.Errorf("serveProcs(%q, %d) = %d, want %d", c.env, c.current, got, c.want)
		}
	}
}

// TestEmptiedDataDirRefused: a data dir that held a store and is found
// empty (a cloud folder not synced yet) is not made a new store, even
// with the password in the environment; --init does it on purpose.
func TestEmptiedDataDirRefused(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	startMount(t, bin, mnt, data, "--keyring", "never").stop(t)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	for _, emptied := range []func(){func() {}, func() { os.Mkdir(data, 0o700) }} {
		emptied()
		c := exec.Command(bin, "mount", "-m", mnt, "-d", data, "--keyring", "never")
		c.Env = append(os.Environ(), "RENCFS_PASSWORD=cli test password")
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitStore || !strings.Contains(string(out), "--init") {
			t.Fatalf("mount of an emptied data dir: %v: %s", err, out)
		}
		if ents, _ := os.ReadDir(data); len(ents) != 0 {
			t.Fatalf("the refused mount wrote %d files into the data dir", len(ents))
		}
	}
	startMount(t, bin, mnt, data, "--keyring", "never", "--init").stop(t)
	// A new path still gets a store on first use, as before.
	startMount(t, bin, mnt, filepath.Join(t.TempDir(), "new"), "--keyring", "never").stop(t)
}

// TestAttributesSurviveKill: chmod, chown, utimes and an xattr set by
// path reach the data dir within the 5 s write-back bound, though the
// kernel does not pass sync to the daemon: after `sync`, 6 s and SIGKILL,
// a remount shows all four.
func TestAttributesSurviveKill(t *testing.T) {
	testutil.RequireFUSE(t)
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	mnt := t.TempDir()
	p := startMount(t, bin, mnt, data, "--keyring", "never")
	f := filepath.Join(mnt, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1234567890, 0)
	if err := errors.Join(os.Chmod(f, 0o600), os.Chown(f, 4242, 4343), os.Chtimes(f, when, when),
		unix.Setxattr(f, "user.k", []byte("kept"), 0)); err != nil {
		t.Fatal(err)
	}
	exec.Command("sync").Run()
	time.Sleep(6 * time.Second)
	p.cmd.Process.Kill()
	<-p.exited
	if err := exec.Command("fusermount3", "-u", "-z", mnt).Run(); err != nil {
		t.Fatal(err)
	}
	startMount(t, bin, mnt, data, "--keyring", "never")
	var st syscall.Stat_t
	if err := syscall.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 16)
	n, err := unix.Getxattr(f, "user.k", v)
	if st.Mode&0o7777 != 0o600 || st.Uid != 4242 || st.Gid != 4343 || st.Mtim.Sec != when.Unix() || err != nil || string(v[:n]) != "kept" {
		t.Fatalf("after SIGKILL: mode %o uid %d gid %d mtime %d xattr %q %v", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, v[:n], err)
	}
}
