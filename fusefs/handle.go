package fusefs

import (
	"context"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/rencfs/rencfs/encrypted"
)

// fileHandle is an open regular file (or special file).
type fileHandle struct{ n node }

var (
	_ fs.HandleReader   = (*fileHandle)(nil)
	_ fs.HandleWriter   = (*fileHandle)(nil)
	_ fs.HandleFlusher  = (*fileHandle)(nil)
	_ fs.HandleReleaser = (*fileHandle)(nil)
)

func (h *fileHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := resp.Data[:req.Size]
	n, err := h.n.fs.core.Read(h.n.ino, buf, req.Offset)
	if err != nil {
		return h.n.fs.fail("read", h.n.ino, "", err)
	}
	h.n.fs.log.Log(ctx, LevelTrace, "read", "ino", uint64(h.n.ino), "off", req.Offset, "size", req.Size, "got", n)
	resp.Data = buf[:n]
	return nil
}

func (h *fileHandle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if req.Flags&fuse.WriteKillSUIDGID != 0 {
		if err := h.n.killPriv(); err != nil {
			return err
		}
	}
	n, err := h.n.fs.core.Write(h.n.ino, req.Data, req.Offset)
	h.n.fs.log.Log(ctx, LevelTrace, "write", "ino", uint64(h.n.ino), "off", req.Offset, "size", len(req.Data))
	resp.Size = n
	return h.n.fs.fail("write", h.n.ino, "", err)
}

func (h *fileHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return h.n.fs.fail("flush", h.n.ino, "", h.n.fs.core.Flush(h.n.ino))
}

func (h *fileHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	return h.n.fs.fail("release", h.n.ino, "", h.n.fs.core.Release(h.n.ino))
}

// dirHandle is an open directory.
type dirHandle struct{ n node }

var _ fs.HandleReadDirAller = (*dirHandle)(nil)

// ReadDirAll lists the directory once per opendir (and rewinddir); bazil
// serves the kernel's offsets from that snapshot, so entries created or
// removed meanwhile never make the listing skip others.
func (h *dirHandle) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	f := h.n.fs
	parent := h.n.ino
	f.mu.Lock()
	if l, ok := f.names[h.n.ino]; ok {
		parent = l.parent
	}
	f.mu.Unlock()
	out := []fuse.Dirent{
		{Inode: uint64(h.n.ino), Type: fuse.DT_Dir, Name: "."},
		{Inode: uint64(parent), Type: fuse.DT_Dir, Name: ".."},
	}
	for d, err := range f.core.ReadDir(h.n.ino) {
		if err != nil {
			if encrypted.Errno(err) == syscall.EIO {
				// One damaged entry hides one name, not the directory.
				f.log.Warn("damaged directory entry skipped", "dir", f.path(h.n.ino), "err", err)
				continue
			}
			return nil, f.fail("readdir", h.n.ino, "", err)
		}
		out = append(out, fuse.Dirent{Inode: uint64(d.Ino), Type: direntType(d.Type), Name: d.Name})
	}
	return out, nil
}

func direntType(t uint32) fuse.DirentType {
	switch t {
	case syscall.S_IFDIR:
		return fuse.DT_Dir
	case syscall.S_IFREG:
		return fuse.DT_File
	case syscall.S_IFLNK:
		return fuse.DT_Link
	case syscall.S_IFIFO:
		return fuse.DT_FIFO
	case syscall.S_IFSOCK:
		return fuse.DT_Socket
	case syscall.S_IFCHR:
		return fuse.DT_Char
	case syscall.S_IFBLK:
		return fuse.DT_Block
	}
	return fuse.DT_Unknown
}

// Poll: see node.Poll.
func (h *fileHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	return fuse.Errno(syscall.ENOSYS)
}

// Poll: see node.Poll.
func (h *dirHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	return fuse.Errno(syscall.ENOSYS)
}
