package fusefs

import (
	"context"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/rencfs/rencfs/encrypted"
)

// node is a file, directory, link or special file. It is a comparable
// value: bazil keys its node table by it, so every lookup of one inode
// (through any hard link) yields the same kernel node.
type node struct {
	fs  *FS
	ino encrypted.Ino
}

var (
	_ fs.Node               = node{}
	_ fs.NodeGetattrer      = node{}
	_ fs.NodeSetattrer      = node{}
	_ fs.NodeStringLookuper = node{}
	_ fs.NodeCreater        = node{}
	_ fs.NodeMkdirer        = node{}
	_ fs.NodeMknoder        = node{}
	_ fs.NodeSymlinker      = node{}
	_ fs.NodeReadlinker     = node{}
	_ fs.NodeLinker         = node{}
	_ fs.NodeRemover        = node{}
	_ fs.NodeRenamer        = node{}
	_ fs.NodeOpener         = node{}
	_ fs.NodeFsyncer        = node{}
	_ fs.NodeForgetter      = node{}
	_ fs.NodeGetxattrer     = node{}
	_ fs.NodeListxattrer    = node{}
	_ fs.NodeSetxattrer     = node{}
	_ fs.NodeRemovexattrer  = node{}
)

func (n node) Attr(ctx context.Context, out *fuse.Attr) error {
	a, err := n.fs.core.GetAttr(n.ino)
	if err != nil {
		return n.fs.fail("getattr", n.ino, "", err)
	}
	n.fs.fillAttr(a, out)
	return nil
}

func (n node) Getattr(ctx context.Context, req *fuse.GetattrRequest, resp *fuse.GetattrResponse) error {
	return n.Attr(ctx, &resp.Attr)
}

func (n node) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	var s encrypted.SetAttr
	v := req.Valid
	if v.Mode() {
		m := uint32(req.Mode.Perm()) | permBits(req.Mode)
		s.Mode = &m
	}
	if v.Uid() {
		s.UID = &req.Uid
	}
	if v.Gid() {
		s.GID = &req.Gid
	}
	if v.Size() {
		s.Size = &req.Size
	}
	now := time.Now()
	switch {
	case v.AtimeNow():
		s.Atime = &now
	case v.Atime():
		s.Atime = &req.Atime
	}
	switch {
	case v.MtimeNow():
		s.Mtime = &now
	case v.Mtime():
		s.Mtime = &req.Mtime
	}
	if v.SetattrKillSUIDGID() && !v.Mode() {
		if err := n.killPriv(); err != nil {
			return err
		}
	}
	n.fs.log.Debug("setattr", "path", n.fs.path(n.ino), "valid", v.String())
	a, err := n.fs.core.SetAttr(n.ino, s)
	if err != nil {
		return n.fs.fail("setattr", n.ino, "", err)
	}
	n.fs.fillAttr(a, &resp.Attr)
	return nil
}

// child registers a new or found inode under this directory.
func (n node) child(a encrypted.Attr, name string) node {
	n.fs.remember(a.Ino, n.ino, name)
	return node{n.fs, a.Ino}
}

func (n node) Lookup(ctx context.Context, name string) (fs.Node, error) {
	a, err := n.fs.core.Lookup(n.ino, name)
	if err != nil {
		if encrypted.Errno(err) == syscall.ENOENT {
			return nil, fuse.Errno(syscall.ENOENT) // the common case: quiet
		}
		return nil, n.fs.fail("lookup", n.ino, name, err)
	}
	return n.child(a, name), nil
}

func (n node) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (fs.Node, fs.Handle, error) {
	n.fs.log.Debug("create", "path", n.fs.path(n.ino), "name", req.Name)
	a, err := n.fs.core.Create(n.ino, req.Name, uint32(req.Mode.Perm())|permBits(req.Mode), owner(req.Header))
	if encrypted.Errno(err) == syscall.EEXIST && req.Flags&fuse.OpenExclusive == 0 {
		// Created by someone else since the kernel's lookup: open it.
		a, err = n.fs.core.Lookup(n.ino, req.Name)
		if err == nil && req.Flags&fuse.OpenTruncate != 0 {
			zero := uint64(0)
			a, err = n.fs.core.SetAttr(a.Ino, encrypted.SetAttr{Size: &zero})
		}
	}
	if err != nil {
		return nil, nil, n.fs.fail("create", n.ino, req.Name, err)
	}
	c := n.child(a, req.Name)
	h, err := c.open(&resp.OpenResponse)
	if err != nil {
		return nil, nil, err
	}
	return c, h, nil
}

func (n node) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fs.Node, error) {
	n.fs.log.Debug("mkdir", "path", n.fs.path(n.ino), "name", req.Name)
	a, err := n.fs.core.Mkdir(n.ino, req.Name, uint32(req.Mode.Perm())|permBits(req.Mode), owner(req.Header))
	if err != nil {
		return nil, n.fs.fail("mkdir", n.ino, req.Name, err)
	}
	return n.child(a, req.Name), nil
}

func (n node) Mknod(ctx context.Context, req *fuse.MknodRequest) (fs.Node, error) {
	n.fs.log.Debug("mknod", "path", n.fs.path(n.ino), "name", req.Name)
	a, err := n.fs.core.Mknod(n.ino, req.Name, fromFileMode(req.Mode), uint64(req.Rdev), owner(req.Header))
	if err != nil {
		return nil, n.fs.fail("mknod", n.ino, req.Name, err)
	}
	return n.child(a, req.Name), nil
}

func (n node) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (fs.Node, error) {
	n.fs.log.Debug("symlink", "path", n.fs.path(n.ino), "name", req.NewName)
	a, err := n.fs.core.Symlink(n.ino, req.NewName, req.Target, owner(req.Header))
	if err != nil {
		return nil, n.fs.fail("symlink", n.ino, req.NewName, err)
	}
	return n.child(a, req.NewName), nil
}

func (n node) Readlink(ctx context.Context, req *fuse.ReadlinkRequest) (string, error) {
	t, err := n.fs.core.Readlink(n.ino)
	return t, n.fs.fail("readlink", n.ino, "", err)
}

func (n node) Link(ctx context.Context, req *fuse.LinkRequest, old fs.Node) (fs.Node, error) {
	o, ok := old.(node)
	if !ok {
		return nil, fuse.Errno(syscall.EXDEV)
	}
	n.fs.log.Debug("link", "from", n.fs.path(o.ino), "dir", n.fs.path(n.ino), "name", req.NewName)
	a, err := n.fs.core.Link(o.ino, n.ino, req.NewName)
	if err != nil {
		return nil, n.fs.fail("link", n.ino, req.NewName, err)
	}
	return n.child(a, req.NewName), nil
}

func (n node) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	n.fs.log.Debug("remove", "path", n.fs.path(n.ino), "name", req.Name, "dir", req.Dir)
	var err error
	if req.Dir {
		err = n.fs.core.Rmdir(n.ino, req.Name)
	} else {
		err = n.fs.core.Unlink(n.ino, req.Name)
	}
	return n.fs.fail("remove", n.ino, req.Name, err)
}

func (n node) Rename(ctx context.Context, req *fuse.RenameRequest, newDir fs.Node) error {
	d, ok := newDir.(node)
	if !ok {
		return fuse.Errno(syscall.EXDEV)
	}
	n.fs.log.Debug("rename", "from", n.fs.path(n.ino), "name", req.OldName, "to", n.fs.path(d.ino), "newname", req.NewName)
	err := n.fs.core.Rename(n.ino, req.OldName, d.ino, req.NewName, 0)
	if err == nil {
		if a, lerr := n.fs.core.Lookup(d.ino, req.NewName); lerr == nil {
			n.fs.remember(a.Ino, d.ino, req.NewName)
		}
	}
	return n.fs.fail("rename", n.ino, req.OldName, err)
}

func (n node) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if req.Dir {
		return &dirHandle{n}, nil
	}
	if req.OpenFlags&fuse.OpenKillSUIDGID != 0 {
		if err := n.killPriv(); err != nil {
			return nil, err
		}
	}
	return n.open(resp)
}

// killPriv clears setuid, and setgid when group-executable, as the
// kernel asks on a write, truncate or chown by an unprivileged process
// (we handle "killpriv" so that it need not ask for security.capability
// on every write).
func (n node) killPriv() error {
	a, err := n.fs.core.GetAttr(n.ino)
	if err != nil {
		return n.fs.fail("killpriv", n.ino, "", err)
	}
	kill := uint32(syscall.S_ISUID)
	if a.Mode&0o010 != 0 {
		kill |= syscall.S_ISGID
	}
	if a.Mode&kill == 0 {
		return nil
	}
	m := a.Mode &^ kill &^ syscall.S_IFMT
	_, err = n.fs.core.SetAttr(n.ino, encrypted.SetAttr{Mode: &m})
	return n.fs.fail("killpriv", n.ino, "", err)
}

func (n node) open(resp *fuse.OpenResponse) (fs.Handle, error) {
	if _, err := n.fs.core.Open(n.ino); err != nil {
		return nil, n.fs.fail("open", n.ino, "", err)
	}
	// Only this mount changes the store: the page cache stays valid
	// across opens.
	resp.Flags |= fuse.OpenKeepCache
	return &fileHandle{n}, nil
}

func (n node) Fsync(ctx context.Context, req *fuse.FsyncRequest) error {
	return n.fs.fail("fsync", n.ino, "", n.fs.core.Fsync(n.ino))
}

func (n node) Forget() { n.fs.forget(n.ino) }

func (n node) Getxattr(ctx context.Context, req *fuse.GetxattrRequest, resp *fuse.GetxattrResponse) error {
	v, err := n.fs.core.GetXattr(n.ino, req.Name)
	if err != nil {
		if encrypted.Errno(err) == syscall.ENODATA {
			return fuse.ErrNoXattr
		}
		return n.fs.fail("getxattr", n.ino, "", err)
	}
	resp.Xattr = v
	return nil
}

func (n node) Listxattr(ctx context.Context, req *fuse.ListxattrRequest, resp *fuse.ListxattrResponse) error {
	names, err := n.fs.core.ListXattr(n.ino)
	if err != nil {
		return n.fs.fail("listxattr", n.ino, "", err)
	}
	resp.Append(names...)
	return nil
}

func (n node) Setxattr(ctx context.Context, req *fuse.SetxattrRequest) error {
	return n.fs.fail("setxattr", n.ino, "", n.fs.core.SetXattr(n.ino, req.Name, req.Xattr, req.Flags))
}

func (n node) Removexattr(ctx context.Context, req *fuse.RemovexattrRequest) error {
	err := n.fs.core.RemoveXattr(n.ino, req.Name)
	if encrypted.Errno(err) == syscall.ENODATA {
		return fuse.ErrNoXattr
	}
	return n.fs.fail("removexattr", n.ino, "", err)
}

// Poll answers ENOSYS, after which the kernel stops asking: files here
// are always ready. Answering at all matters: Go registers every file it
// opens with epoll, whose poll of a FUSE file waits for this reply, and a
// process reading its own mount would otherwise deadlock.
func (n node) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	return fuse.Errno(syscall.ENOSYS)
}
