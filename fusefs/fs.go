// Package fusefs serves an encrypted.FS through FUSE (go-fuse's raw
// protocol layer). It translates requests and errors; all cryptography is
// in package encrypted.
//
// The kernel's node ids are the store's inode ids (the root is 1 in both),
// so no table maps one to the other: the store already caches inodes, and
// a hard link's names all reach the same kernel node.
package fusefs

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/rencfs/rencfs/encrypted"
)

// LevelTrace is below slog.LevelDebug: every read and write.
const LevelTrace = slog.Level(-8)

// cacheValid is how long the kernel may cache attributes and names. One
// mount owns the store, and every change passes through it, so the
// kernel's cache cannot go stale behind its back.
const cacheValid = time.Minute

// FS adapts an encrypted.FS to go-fuse's RawFileSystem.
type FS struct {
	fuse.RawFileSystem // ENOSYS for what is not below
	core               *encrypted.FS
	log                *slog.Logger

	mu    sync.Mutex
	names map[encrypted.Ino]link // where each inode the kernel knows was last seen

	srv atomic.Pointer[fuse.Server] // set once serving: for cache invalidations

	dirMu   sync.Mutex
	dirs    map[uint64]*listing // open directory handles
	nextDir uint64
}

// link is where an inode was last seen, and how many lookups the kernel
// holds on it (it forgets them in FORGET).
type link struct {
	parent  encrypted.Ino
	name    string
	lookups uint64
}

// New returns the FUSE adapter of core, logging to log.
func New(core *encrypted.FS, log *slog.Logger) *FS {
	return &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		core:          core, log: log,
		names: map[encrypted.Ino]link{},
		dirs:  map[uint64]*listing{},
	}
}

func (f *FS) String() string { return "rencfs" }

// remember notes where ino lives (for log messages and ".."), and that
// the kernel took one more lookup on it.
func (f *FS) remember(ino, parent encrypted.Ino, name string) {
	f.mu.Lock()
	l := f.names[ino]
	f.names[ino] = link{parent, name, l.lookups + 1}
	f.mu.Unlock()
}

// Forget drops nlookup of the kernel's lookups on nodeid.
func (f *FS) Forget(nodeid, nlookup uint64) {
	ino := encrypted.Ino(nodeid)
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.names[ino]
	if !ok {
		return
	}
	if l.lookups <= nlookup {
		delete(f.names, ino)
		return
	}
	l.lookups -= nlookup
	f.names[ino] = l
}

// rename moves the name of ino, if known, keeping its lookup count.
func (f *FS) rename(ino, parent encrypted.Ino, name string) {
	f.mu.Lock()
	if l, ok := f.names[ino]; ok {
		l.parent, l.name = parent, name
		f.names[ino] = l
	}
	f.mu.Unlock()
}

// dropCaches runs when the store has been idle long enough for its keys
// to be wiped (see encrypted.FS.OnIdle). It asks the kernel to drop what
// it caches of the store, plaintext all of it: the names it looked up and
// the pages and attributes of every inode it knows. Dirty pages are
// written back on the way, as requests served before the wipe. Then it
// forgets the names kept for log messages (a Go string cannot be zeroed;
// dropping the reference is what there is), keeping the lookup counts.
func (f *FS) dropCaches() {
	srv := f.srv.Load()
	if srv == nil {
		return
	}
	f.mu.Lock()
	known := make(map[encrypted.Ino]link, len(f.names))
	for ino, l := range f.names {
		known[ino] = l
		l.name = ""
		f.names[ino] = l
	}
	f.mu.Unlock()
	for ino, l := range known {
		if l.name != "" {
			srv.EntryNotify(uint64(l.parent), l.name) // ENOENT if the kernel forgot it: fine
		}
		srv.InodeNotify(uint64(ino), 0, 0) // from offset 0 to the end
	}
	srv.InodeNotify(uint64(encrypted.RootIno), 0, 0)
}

// path rebuilds the path of ino from the names seen, as well as known.
func (f *FS) path(ino encrypted.Ino) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for i := 0; ino != encrypted.RootIno && i < 4096; i++ {
		l, ok := f.names[ino]
		if !ok || l.name == "" {
			parts = append(parts, "?") // unknown, or forgotten at a key wipe
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

// logPath names ino, or name in directory ino, in a log record. The path
// is rebuilt from the names seen only if the record is written: most are
// Debug records, and requests are many.
type logPath struct {
	f    *FS
	ino  encrypted.Ino
	name string
}

func (f *FS) logPath(ino encrypted.Ino, name string) logPath { return logPath{f, ino, name} }

func (p logPath) LogValue() slog.Value {
	s := p.f.path(p.ino)
	if p.name != "" {
		s = strings.TrimSuffix(s, "/") + "/" + p.name
	}
	return slog.StringValue(s)
}

// fail turns a core error into the status the kernel gets. Damage is
// logged (it is the one thing the user must hear about); a damaged file
// answers EIO, and nothing else is affected.
//
// ino is the file concerned, or the directory holding name.
func (f *FS) fail(op string, ino encrypted.Ino, name string, err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	errno := encrypted.Errno(err)
	switch {
	case errors.Is(err, encrypted.ErrCorrupt):
		f.log.Warn("damaged file: answering EIO", "op", op, "path", f.logPath(ino, name), "err", err)
	case errno == syscall.EIO:
		f.log.Error("I/O error", "op", op, "path", f.logPath(ino, name), "err", err)
	default:
		f.log.Debug("failed", "op", op, "path", f.logPath(ino, name), "errno", errno.Error())
	}
	return fuse.Status(errno)
}

// fillAttr converts the store's attributes for the kernel.
func (f *FS) fillAttr(a encrypted.Attr, out *fuse.Attr) {
	*out = fuse.Attr{
		Ino: uint64(a.Ino), Size: a.Size, Blocks: a.Blocks,
		Atime: uint64(a.Atime.Unix()), Atimensec: uint32(a.Atime.Nanosecond()),
		Mtime: uint64(a.Mtime.Unix()), Mtimensec: uint32(a.Mtime.Nanosecond()),
		Ctime: uint64(a.Ctime.Unix()), Ctimensec: uint32(a.Ctime.Nanosecond()),
		Mode: a.Mode, Nlink: a.Nlink, Owner: fuse.Owner{Uid: a.UID, Gid: a.GID},
		Rdev: uint32(a.Rdev), Blksize: uint32(f.core.ChunkSize()),
	}
}

// entry answers a request that made or found a name: the kernel now
// holds one more lookup on the inode.
func (f *FS) entry(parent encrypted.Ino, name string, a encrypted.Attr, out *fuse.EntryOut) fuse.Status {
	f.remember(a.Ino, parent, name)
	out.NodeId = uint64(a.Ino)
	f.fillAttr(a, &out.Attr)
	out.SetEntryTimeout(cacheValid)
	out.SetAttrTimeout(cacheValid)
	return fuse.OK
}

func owner(h *fuse.InHeader) encrypted.Owner {
	return encrypted.Owner{UID: h.Uid, GID: h.Gid}
}

func ino(h *fuse.InHeader) encrypted.Ino { return encrypted.Ino(h.NodeId) }

// StatFs reports the space of the medium under the data directory.
func (f *FS) StatFs(cancel <-chan struct{}, in *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	u, err := f.core.Usage()
	if err != nil {
		return f.fail("statfs", encrypted.RootIno, "", err)
	}
	*out = fuse.StatfsOut{
		Blocks: u.Blocks, Bfree: u.BlocksFree, Bavail: u.BlocksAvail,
		Files: u.Files, Ffree: u.FilesFree,
		Bsize: u.BlockSize, Frsize: u.BlockSize, NameLen: encrypted.MaxNameLen,
	}
	return fuse.OK
}
