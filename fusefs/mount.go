package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

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
	conn *fuse.Conn
	done chan struct{}
	err  error // of Serve, once done is closed
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
	options := []fuse.MountOption{
		fuse.FSName("rencfs"), fuse.Subtype("rencfs"),
		// The kernel checks permissions from the modes we report: EACCES
		// as on any local filesystem.
		fuse.DefaultPermissions(),
		fuse.MaxReadahead(1 << 20),
		fuse.AsyncRead(),
		// One mount owns the store, so the kernel may buffer writes: a file
		// written in 10 KiB pieces reaches us in 128 KiB requests.
		fuse.WritebackCache(),
		// We clear setuid/setgid on write, truncate and chown ourselves,
		// which spares a getxattr("security.capability") per write.
		fuse.HandleKillPriv(),
		fuse.MaxBackground(64), fuse.CongestionThreshold(48),
	}
	if opt.ReadOnly {
		options = append(options, fuse.ReadOnly())
	}
	if opt.AllowOther {
		options = append(options, fuse.AllowOther())
	}
	conn, err := fuse.Mount(dir, options...)
	if err != nil {
		return nil, mountError(dir, err)
	}
	m := &Mounted{dir: dir, conn: conn, done: make(chan struct{})}
	srv := fs.New(conn, nil)
	go func() {
		m.err = srv.Serve(New(core, log))
		close(m.done)
	}()
	return m, nil
}

// Dir is the absolute mount point.
func (m *Mounted) Dir() string { return m.dir }

// Done is closed when serving stops: after Unmount, or an unmount from
// outside (fusermount3 -u).
func (m *Mounted) Done() <-chan struct{} { return m.done }

// Unmount detaches the filesystem, retrying while it is busy (a process
// has its working directory inside, say) until timeout, then detaching it
// lazily. It waits for serving to end and closes the connection.
func (m *Mounted) Unmount(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-m.done:
			return m.close()
		default:
		}
		err := fuse.Unmount(m.dir)
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
	return m.close()
}

func (m *Mounted) close() error {
	cerr := m.conn.Close()
	if m.err != nil {
		return m.err
	}
	return cerr
}

// Unmount detaches the mount at dir; EBUSY-like errors come back as they are.
func Unmount(dir string) error {
	if err := fuse.Unmount(dir); err != nil {
		return fmt.Errorf("unmount %s: %w (is a process using it? try --lazy)", dir, err)
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
	var nf *fuse.MountpointDoesNotExistError
	msg := err.Error()
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("mount point %s does not exist", dir)
	case strings.Contains(msg, `"fusermount3": executable file not found`):
		return errors.New("FUSE is not available: fusermount3 is missing (install the fuse3 package)")
	case strings.Contains(msg, "/dev/fuse"), strings.Contains(msg, "Invalid argument"), strings.Contains(msg, "Operation not permitted"):
		return fmt.Errorf("FUSE is not available (is /dev/fuse usable here?): %s", msg)
	}
	return fmt.Errorf("mount %s: %s", dir, msg)
}
