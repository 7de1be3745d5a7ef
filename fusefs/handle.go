package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/rencfs/rencfs/encrypted"
)

// Files need no handle of their own: the store counts opens per inode,
// and reads and writes name the inode. Directories keep their listing
// per handle.

// keepCache tells the kernel that its page cache stays valid across
// opens: only this mount changes the store.
func keepCache(out *fuse.OpenOut) { out.OpenFlags |= fuse.FOPEN_KEEP_CACHE }

func (f *FS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	n := ino(&in.InHeader)
	if in.Mode&fuse.OPEN_KILL_SUIDGID != 0 {
		if st := f.clearPriv(n); st != fuse.OK {
			return st
		}
	}
	if _, err := f.core.Open(n); err != nil {
		return f.fail("open", n, "", err)
	}
	keepCache(out)
	return fuse.OK
}

func (f *FS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	n := ino(&in.InHeader)
	buf = buf[:min(len(buf), int(in.Size))]
	got, err := f.core.Read(n, buf, int64(in.Offset))
	if err != nil {
		return nil, f.fail("read", n, "", err)
	}
	f.log.Log(context.Background(), LevelTrace, "read", "ino", uint64(n), "off", in.Offset, "size", in.Size, "got", got)
	return zeroedAfter(buf[:got]), fuse.OK
}

// zeroedAfter is a read reply whose plaintext go-fuse's buffer pool does
// not keep: Done, called once the reply is written to the kernel, zeroes
// it. (go-fuse calls Done before the write only with DisableSplice, which
// Mount never sets.)
type zeroedAfter []byte

func (r zeroedAfter) Bytes([]byte) ([]byte, fuse.Status) { return r, fuse.OK }
func (r zeroedAfter) Size() int                          { return len(r) }
func (r zeroedAfter) Done()                              { clear(r) }

// Fallocate reserves, punches or zeroes a range (encrypted.FS.Fallocate).
func (f *FS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	n := ino(&in.InHeader)
	return f.fail("fallocate", n, "", f.core.Fallocate(n, in.Mode, in.Offset, in.Length))
}

// CopyFileRange copies within the mount without the data crossing the
// kernel twice (encrypted.FS.CopyRange).
func (f *FS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	src, dst := ino(&in.InHeader), encrypted.Ino(in.NodeIdOut)
	f.log.Debug("copy_file_range", "from", f.logPath(src, ""), "to", f.logPath(dst, ""), "len", in.Len)
	n, err := f.core.CopyRange(src, in.OffIn, dst, in.OffOut, min(in.Len, 1<<30))
	if err != nil && n == 0 {
		return 0, f.fail("copy_file_range", src, "", err)
	}
	return uint32(n), fuse.OK // a short copy; the kernel asks again
}

// Lseek serves SEEK_DATA and SEEK_HOLE (the kernel handles the others).
func (f *FS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	n := ino(&in.InHeader)
	off, err := f.core.Seek(n, in.Offset, int(in.Whence))
	if encrypted.Errno(err) == syscall.ENXIO {
		return fuse.Status(syscall.ENXIO) // past the end or no data: routine
	}
	if err != nil {
		return f.fail("lseek", n, "", err)
	}
	out.Offset = off
	return fuse.OK
}

func (f *FS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	n := ino(&in.InHeader)
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0 {
		if st := f.clearPriv(n); st != fuse.OK {
			return 0, st
		}
	}
	written, err := f.core.Write(n, data, int64(in.Offset))
	clear(data) // the request buffer is pooled: keep no plaintext there
	f.log.Log(context.Background(), LevelTrace, "write", "ino", uint64(n), "off", in.Offset, "size", len(data))
	return uint32(written), f.fail("write", n, "", err)
}

func (f *FS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	n := ino(&in.InHeader)
	return f.fail("flush", n, "", f.core.Flush(n))
}

func (f *FS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	n := ino(&in.InHeader)
	return f.fail("fsync", n, "", f.core.Fsync(n))
}

// Release has no answer for the kernel; a failure to store what the file
// still held is logged by fail.
func (f *FS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	n := ino(&in.InHeader)
	f.fail("release", n, "", f.core.Release(n))
}

func (f *FS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	n := ino(&in.InHeader)
	if _, err := f.core.GetAttr(n); err != nil {
		return f.fail("opendir", n, "", err)
	}
	f.dirMu.Lock()
	f.nextDir++
	out.Fh = f.nextDir
	f.dirs[out.Fh] = nil // listed at the first read from offset 0
	f.dirMu.Unlock()
	return fuse.OK
}

// listing is a snapshot of a directory, taken at opendir's first read.
type listing struct {
	entries []fuse.DirEntry
	damaged bool // some entries failed authentication: the listing is short
}

// ReadDir lists the directory once per opendir (and rewinddir) and serves
// the kernel's offsets from that snapshot, so entries created or removed
// meanwhile never make the listing skip others. A listing that lacks
// damaged entries ends in EIO: the program reading it gets every entry
// that authenticates, then an error, never a silently shorter listing.
func (f *FS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	n := ino(&in.InHeader)
	f.dirMu.Lock()
	l, ok := f.dirs[in.Fh]
	f.dirMu.Unlock()
	if !ok {
		return fuse.EBADF
	}
	if in.Offset == 0 || l == nil {
		var st fuse.Status
		if l, st = f.list(n); st != fuse.OK {
			return st
		}
		f.dirMu.Lock()
		f.dirs[in.Fh] = l
		f.dirMu.Unlock()
	}
	if in.Offset >= uint64(len(l.entries)) && l.damaged {
		return fuse.EIO
	}
	for i := in.Offset; i < uint64(len(l.entries)); i++ {
		if !out.AddDirEntry(l.entries[i]) {
			break
		}
	}
	return fuse.OK
}

// list reads directory n, with "." and ".."; each entry's offset is the
// next one's index.
func (f *FS) list(n encrypted.Ino) (*listing, fuse.Status) {
	a, err := f.core.GetAttr(n)
	if err != nil {
		return nil, f.fail("readdir", n, "", err)
	}
	l := &listing{entries: []fuse.DirEntry{
		{Name: ".", Ino: uint64(n), Mode: syscall.S_IFDIR},
		{Name: "..", Ino: uint64(a.Parent), Mode: syscall.S_IFDIR},
	}}
	for d, err := range f.core.ReadDir(n) {
		if err != nil {
			if errors.Is(err, encrypted.ErrCorrupt) {
				f.fail("readdir", n, "", err) // names the directory in a warning
				l.damaged = true
				continue
			}
			return nil, f.fail("readdir", n, "", err)
		}
		l.entries = append(l.entries, fuse.DirEntry{Name: d.Name, Ino: uint64(d.Ino), Mode: d.Type})
	}
	for i := range l.entries {
		l.entries[i].Off = uint64(i + 1)
	}
	return l, fuse.OK
}

func (f *FS) ReleaseDir(in *fuse.ReleaseIn) {
	f.dirMu.Lock()
	delete(f.dirs, in.Fh)
	f.dirMu.Unlock()
}

func (f *FS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	n := ino(&in.InHeader)
	return f.fail("fsyncdir", n, "", f.core.Fsync(n))
}
