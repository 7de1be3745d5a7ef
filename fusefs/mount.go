package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/rencfs/rencfs/encrypted"
)

// Options are the mount's choices.
type Options struct {
	ReadOnly   bool
	AllowOther bool
}

// Mounted is a live mount, served in the background.
type Mounted struct {
	dir  string
	srv  *fuse.Server
	done chan struct{}
}

// ErrAlreadyMounted: the mount point is already a mount of something.
var ErrAlreadyMounted = errors.New("mount point is already mounted (unmount it first, or use --umount-on-start)")

// Mount mounts core at dir and serves it until Unmount. It returns once
// the kernel has accepted the mount.
func Mount(dir string, core *encrypted.FS, opt Options, log *slog.Logger) (*Mounted, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckMountPoint(dir); err != nil {
		return nil, err
	}
	mo := &fuse.MountOptions{
		FsName: "rencfs", Name: "rencfs",
		// The kernel checks permissions from the modes we report: EACCES
		// as on any local filesystem.
		Options:      []string{"default_permissions"},
		AllowOther:   opt.AllowOther,
		MaxReadAhead: 1 << 20,
		MaxWrite:     1 << 20,
		// One mount owns the store, so the kernel may buffer writes: a
		// file written in 10 KiB pieces reaches us in large requests. We
		// clear setuid/setgid on write, truncate and chown ourselves,
		// which spares a getxattr("security.capability") per write.
		ExtraCapabilities: fuse.CAP_WRITEBACK_CACHE | fuse.CAP_HANDLE_KILLPRIV_V2,
		MaxBackground:     64, CongestionThreshold: 48,
		// Listings come from a snapshot per handle; plus-mode would make
		// every entry a lookup the kernel must later forget.
		DisableReadDirPlus: true,
		Logger:             stdlog.New(slogWriter{log}, "", 0),
	}
	if opt.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	adapter := New(core, log)
	srv, err := fuse.NewServer(adapter, dir, mo)
	if err != nil {
		return nil, mountError(dir, err)
	}
	adapter.srv.Store(srv)
	core.OnIdle(adapter.dropCaches)
	m := &Mounted{dir: dir, srv: srv, done: make(chan struct{})}
	go func() {
		srv.Serve()
		close(m.done)
	}()
	if err := srv.WaitMount(); err != nil {
		_ = srv.Unmount()
		return nil, mountError(dir, err)
	}
	return m, nil
}

// slogWriter passes go-fuse's own messages on to the log: at ERROR those
// that report a failure (a reply the kernel did not take, a read from the
// device failing, a malformed request), at DEBUG the rest (the splice
// fallback, mount steps, unimplemented opcodes), which are routine.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if fuseFailure(msg) {
		w.log.Error("fuse: " + msg)
	} else {
		w.log.Debug("fuse: " + msg)
	}
	return len(p), nil
}

// fuseFailure tells go-fuse's failure messages from its routine ones.
func fuseFailure(msg string) bool {
	if strings.HasPrefix(msg, "trySplice:") {
		return false // falls back to writev: routine for 1 MiB replies
	}
	m := strings.ToLower(msg)
	for _, w := range []string{"failed", "too short", "too few", "bad request", "parserequest", "need "} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// Dir is the absolute mount point.
func (m *Mounted) Dir() string { return m.dir }

// Done is closed when serving stops: after Unmount, or an unmount from
// outside (fusermount3 -u).
func (m *Mounted) Done() <-chan struct{} { return m.done }

// Unmount detaches the filesystem, retrying while it is busy (a process
// has its working directory inside, say) until timeout, then detaching it
// lazily. It waits for serving to end.
func (m *Mounted) Unmount(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-m.done:
			return nil
		default:
		}
		err := m.srv.Unmount()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			if lerr := LazyUnmount(m.dir); lerr != nil {
				return fmt.Errorf("unmount %s: %v; lazy unmount: %w", m.dir, err, lerr)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	<-m.done
	return nil
}

// Unmount detaches the mount at dir; EBUSY-like errors come back as they are.
func Unmount(dir string) error {
	out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("unmount %s: %s (is a process using it? try --lazy)", dir, strings.TrimSpace(string(out)))
	}
	return nil
}

// LazyUnmount detaches a mount now, even busy or dead (after its process
// was killed); the kernel finishes when the last user leaves.
func LazyUnmount(dir string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

// IsMounted reports whether dir is a mount point.
func IsMounted(dir string) (bool, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces and such octal-escaped.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CheckMountPoint says, in one line, why dir cannot be mounted on.
func CheckMountPoint(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mount point %s does not exist", dir)
	}
	if errors.Is(err, syscall.ENOTCONN) {
		return fmt.Errorf("mount point %s is a dead mount (its process was killed): run 'fusermount3 -u %s' or use --umount-on-start", dir, dir)
	}
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	if mounted, err := IsMounted(dir); err != nil {
		return err
	} else if mounted {
		return fmt.Errorf("%s: %w", dir, ErrAlreadyMounted)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("mount point %s is not empty", dir)
	}
	return nil
}

// mountError turns fusermount3's failures into advice.
func mountError(dir string, err error) error {
	msg := strings.TrimSpace(err.Error())
	switch {
	case errors.Is(err, os.ErrNotExist) && !strings.Contains(msg, "fusermount"):
		return fmt.Errorf("mount point %s does not exist", dir)
	case strings.Contains(msg, "executable file not found"):
		return errors.New("FUSE is not available: fusermount3 is missing (install the fuse3 package)")
	case strings.Contains(msg, "/dev/fuse"), strings.Contains(msg, "Invalid argument"), strings.Contains(msg, "Operation not permitted"):
		return fmt.Errorf("FUSE is not available (is /dev/fuse usable here?): %s", msg)
	}
	return fmt.Errorf("mount %s: %s", dir, msg)
}
