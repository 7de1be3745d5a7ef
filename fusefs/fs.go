// Package fusefs serves an encrypted.FS through FUSE (bazil.org/fuse). It
// translates requests and errors; all cryptography is in package encrypted.
package fusefs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/rencfs/rencfs/encrypted"
)

// LevelTrace is below slog.LevelDebug: every read and write.
const LevelTrace = slog.Level(-8)

// cacheValid is how long the kernel may cache attributes and names. One
// mount owns the store, and every change passes through it, so the
// kernel's cache cannot go stale behind its back.
const cacheValid = time.Minute

// FS adapts an encrypted.FS to bazil's fs.FS.
type FS struct {
	core *encrypted.FS
	log  *slog.Logger

	mu    sync.Mutex
	names map[encrypted.Ino]link // where each known inode was last seen, for log messages
}

type link struct {
	parent encrypted.Ino
	name   string
}

// New returns the FUSE adapter of core, logging to log.
func New(core *encrypted.FS, log *slog.Logger) *FS {
	return &FS{core: core, log: log, names: map[encrypted.Ino]link{}}
}

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.FSStatfser = (*FS)(nil)
)

// Root is the store's root directory.
func (f *FS) Root() (fs.Node, error) { return node{f, encrypted.RootIno}, nil }

// Statfs reports the space of the medium under the data directory.
func (f *FS) Statfs(ctx context.Context, req *fuse.StatfsRequest, resp *fuse.StatfsResponse) error {
	u, err := f.core.Usage()
	if err != nil {
		return f.fail("statfs", encrypted.RootIno, "", err)
	}
	resp.Blocks, resp.Bfree, resp.Bavail = u.Blocks, u.BlocksFree, u.BlocksAvail
	resp.Files, resp.Ffree = u.Files, u.FilesFree
	resp.Bsize, resp.Frsize = u.BlockSize, u.BlockSize
	resp.Namelen = encrypted.MaxNameLen
	return nil
}

// remember notes where ino lives, so that log messages can name it.
func (f *FS) remember(ino, parent encrypted.Ino, name string) {
	f.mu.Lock()
	f.names[ino] = link{parent, name}
	f.mu.Unlock()
}

func (f *FS) forget(ino encrypted.Ino) {
	f.mu.Lock()
	delete(f.names, ino)
	f.mu.Unlock()
}

// path rebuilds the path of ino from the names seen, as well as known.
func (f *FS) path(ino encrypted.Ino) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for i := 0; ino != encrypted.RootIno && i < 4096; i++ {
		l, ok := f.names[ino]
		if !ok {
			parts = append(parts, "?")
			break
		}
		parts = append(parts, l.name)
		ino = l.parent
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/")
		b.WriteString(parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// fail turns a core error into the errno the kernel gets. Damage is
// logged (it is the one thing the user must hear about); a damaged file
// answers EIO, and nothing else is affected.
//
// ino is the file concerned, or the directory holding name.
func (f *FS) fail(op string, ino encrypted.Ino, name string, err error) error {
	if err == nil {
		return nil
	}
	errno := encrypted.Errno(err)
	switch {
	case errors.Is(err, encrypted.ErrCorrupt):
		f.log.Warn("damaged file: answering EIO", "op", op, "path", f.pathOf(ino, name), "err", err)
	case errno == syscall.EIO:
		f.log.Error("I/O error", "op", op, "path", f.pathOf(ino, name), "err", err)
	case f.log.Enabled(context.Background(), slog.LevelDebug):
		f.log.Debug("failed", "op", op, "path", f.pathOf(ino, name), "errno", errno.Error())
	}
	return fuse.Errno(errno)
}

func (f *FS) pathOf(ino encrypted.Ino, name string) string {
	p := f.path(ino)
	if name == "" {
		return p
	}
	return strings.TrimSuffix(p, "/") + "/" + name
}

// fillAttr converts the store's attributes for the kernel.
func (f *FS) fillAttr(a encrypted.Attr, out *fuse.Attr) {
	*out = fuse.Attr{
		Valid: cacheValid, Inode: uint64(a.Ino), Size: a.Size, Blocks: a.Blocks,
		Atime: a.Atime, Mtime: a.Mtime, Ctime: a.Ctime,
		Mode: toFileMode(a.Mode), Nlink: a.Nlink, Uid: a.UID, Gid: a.GID, Rdev: uint32(a.Rdev),
		BlockSize: uint32(f.core.ChunkSize()),
	}
}

func owner(h fuse.Header) encrypted.Owner { return encrypted.Owner{UID: h.Uid, GID: h.Gid} }
