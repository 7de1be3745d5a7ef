package fusefs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/rencfs/rencfs/encrypted"
)

func (f *FS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	a, err := f.core.Lookup(ino(h), name)
	if err != nil {
		if encrypted.Errno(err) == syscall.ENOENT {
			return fuse.ENOENT // the common case: quiet
		}
		return f.fail("lookup", ino(h), name, err)
	}
	return f.entry(ino(h), name, a, out)
}

func (f *FS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	a, err := f.core.GetAttr(ino(&in.InHeader))
	if err != nil {
		return f.fail("getattr", ino(&in.InHeader), "", err)
	}
	f.fillAttr(a, &out.Attr)
	out.SetTimeout(cacheValid)
	return fuse.OK
}

func (f *FS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	n := ino(&in.InHeader)
	var s encrypted.SetAttr
	v := in.Valid
	if v&fuse.FATTR_MODE != 0 {
		m := in.Mode &^ syscall.S_IFMT
		s.Mode = &m
	}
	if v&fuse.FATTR_UID != 0 {
		s.UID = &in.Uid
	}
	if v&fuse.FATTR_GID != 0 {
		s.GID = &in.Gid
	}
	if v&fuse.FATTR_SIZE != 0 {
		s.Size = &in.Size
	}
	now := time.Now()
	s.Atime = when(v, fuse.FATTR_ATIME_NOW, fuse.FATTR_ATIME, now, in.Atime, in.Atimensec)
	s.Mtime = when(v, fuse.FATTR_MTIME_NOW, fuse.FATTR_MTIME, now, in.Mtime, in.Mtimensec)
	if v&fuse.FATTR_KILL_SUIDGID != 0 && v&fuse.FATTR_MODE == 0 {
		m, err := f.killPriv(n)
		if err != nil {
			return f.fail("killpriv", n, "", err)
		}
		s.Mode = m
	}
	f.log.Debug("setattr", "path", f.logPath(n, ""), "valid", v)
	a, err := f.core.SetAttr(n, s)
	if err != nil {
		return f.fail("setattr", n, "", err)
	}
	f.fillAttr(a, &out.Attr)
	out.SetTimeout(cacheValid)
	return fuse.OK
}

// when is the time a SETATTR asks for, if any: now, or the one given.
func when(valid, nowBit, bit uint32, now time.Time, sec uint64, nsec uint32) *time.Time {
	switch {
	case valid&nowBit != 0:
		return &now
	case valid&bit != 0:
		t := time.Unix(int64(sec), int64(nsec))
		return &t
	}
	return nil
}

// killPriv returns n's mode without setuid, and without setgid when
// group-executable, as the kernel asks on a write, truncate or chown by an
// unprivileged process (we handle "killpriv" so that it need not ask for
// security.capability on every write); nil when there is nothing to clear.
func (f *FS) killPriv(n encrypted.Ino) (*uint32, error) {
	a, err := f.core.GetAttr(n)
	if err != nil {
		return nil, err
	}
	kill := uint32(syscall.S_ISUID)
	if a.Mode&0o010 != 0 {
		kill |= syscall.S_ISGID
	}
	if a.Mode&kill == 0 {
		return nil, nil
	}
	m := a.Mode &^ kill &^ syscall.S_IFMT
	return &m, nil
}

// clearPriv applies killPriv on its own, for an open or a write.
func (f *FS) clearPriv(n encrypted.Ino) fuse.Status {
	m, err := f.killPriv(n)
	if err == nil && m != nil {
		_, err = f.core.SetAttr(n, encrypted.SetAttr{Mode: m})
	}
	return f.fail("killpriv", n, "", err)
}

func (f *FS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	dir := ino(&in.InHeader)
	f.log.Debug("create", "path", f.logPath(dir, ""), "name", name)
	a, err := f.core.Create(dir, name, in.Mode&^syscall.S_IFMT, owner(&in.InHeader))
	if encrypted.Errno(err) == syscall.EEXIST && in.Flags&syscall.O_EXCL == 0 {
		// Created by someone else since the kernel's lookup: open it.
		a, err = f.core.Lookup(dir, name)
		if err == nil && in.Flags&syscall.O_TRUNC != 0 {
			zero := uint64(0)
			a, err = f.core.SetAttr(a.Ino, encrypted.SetAttr{Size: &zero})
		}
	}
	if err != nil {
		return f.fail("create", dir, name, err)
	}
	if _, err := f.core.Open(a.Ino); err != nil {
		return f.fail("open", dir, name, err)
	}
	f.entry(dir, name, a, &out.EntryOut)
	keepCache(&out.OpenOut)
	return fuse.OK
}

func (f *FS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	dir := ino(&in.InHeader)
	f.log.Debug("mkdir", "path", f.logPath(dir, ""), "name", name)
	a, err := f.core.Mkdir(dir, name, in.Mode&^syscall.S_IFMT, owner(&in.InHeader))
	if err != nil {
		return f.fail("mkdir", dir, name, err)
	}
	return f.entry(dir, name, a, out)
}

func (f *FS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	dir := ino(&in.InHeader)
	f.log.Debug("mknod", "path", f.logPath(dir, ""), "name", name)
	a, err := f.core.Mknod(dir, name, in.Mode, uint64(in.Rdev), owner(&in.InHeader))
	if err != nil {
		return f.fail("mknod", dir, name, err)
	}
	return f.entry(dir, name, a, out)
}

func (f *FS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	f.log.Debug("symlink", "path", f.logPath(ino(h), ""), "name", name)
	a, err := f.core.Symlink(ino(h), name, target, owner(h))
	if err != nil {
		return f.fail("symlink", ino(h), name, err)
	}
	return f.entry(ino(h), name, a, out)
}

func (f *FS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	t, err := f.core.Readlink(ino(h))
	if err != nil {
		return nil, f.fail("readlink", ino(h), "", err)
	}
	return []byte(t), fuse.OK
}

func (f *FS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	dir, old := ino(&in.InHeader), encrypted.Ino(in.Oldnodeid)
	f.log.Debug("link", "from", f.logPath(old, ""), "dir", f.logPath(dir, ""), "name", name)
	a, err := f.core.Link(old, dir, name)
	if err != nil {
		return f.fail("link", dir, name, err)
	}
	return f.entry(dir, name, a, out)
}

func (f *FS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	f.log.Debug("unlink", "path", f.logPath(ino(h), ""), "name", name)
	return f.fail("unlink", ino(h), name, f.core.Unlink(ino(h), name))
}

func (f *FS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	f.log.Debug("rmdir", "path", f.logPath(ino(h), ""), "name", name)
	return f.fail("rmdir", ino(h), name, f.core.Rmdir(ino(h), name))
}

func (f *FS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	from, to := ino(&in.InHeader), encrypted.Ino(in.Newdir)
	f.log.Debug("rename", "from", f.logPath(from, ""), "name", oldName, "to", f.logPath(to, ""), "newname", newName)
	var flags uint32
	switch in.Flags {
	case 0:
	case 1: // RENAME_NOREPLACE
		flags = encrypted.RenameNoReplace
	case 2: // RENAME_EXCHANGE
		flags = encrypted.RenameExchange
	default: // RENAME_WHITEOUT, for overlay filesystems
		return fuse.EINVAL
	}
	if err := f.core.Rename(from, oldName, to, newName, flags); err != nil {
		return f.fail("rename", from, oldName, err)
	}
	// Only for log paths: where the names now lead.
	if a, err := f.core.Lookup(to, newName); err == nil {
		f.rename(a.Ino, to, newName)
	}
	if flags == encrypted.RenameExchange {
		if a, err := f.core.Lookup(from, oldName); err == nil {
			f.rename(a.Ino, from, oldName)
		}
	}
	return fuse.OK
}

func (f *FS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	v, err := f.core.GetXattr(ino(h), attr)
	if err != nil {
		if encrypted.Errno(err) == syscall.ENODATA {
			return 0, fuse.ENOATTR
		}
		return 0, f.fail("getxattr", ino(h), "", err)
	}
	return sized(dest, v)
}

func (f *FS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	names, err := f.core.ListXattr(ino(h))
	if err != nil {
		return 0, f.fail("listxattr", ino(h), "", err)
	}
	var b []byte
	for _, n := range names {
		b = append(append(b, n...), 0)
	}
	return sized(dest, b)
}

// sized copies v to dest, or says how big dest must be: ERANGE when it is
// too small, and the size alone when the caller only asked (len 0).
func sized(dest, v []byte) (uint32, fuse.Status) {
	switch {
	case len(dest) == 0:
		return uint32(len(v)), fuse.OK
	case len(dest) < len(v):
		return uint32(len(v)), fuse.ERANGE
	}
	return uint32(copy(dest, v)), fuse.OK
}

func (f *FS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	n := ino(&in.InHeader)
	err := f.core.SetXattr(n, attr, data, in.Flags)
	clear(data) // in go-fuse's pooled request buffer
	return f.fail("setxattr", n, "", err)
}

func (f *FS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	err := f.core.RemoveXattr(ino(h), attr)
	if encrypted.Errno(err) == syscall.ENODATA {
		return fuse.ENOATTR
	}
	return f.fail("removexattr", ino(h), "", err)
}
