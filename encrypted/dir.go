package encrypted

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"syscall"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// Dirent is one directory entry as readdir reports it.
type Dirent struct {
	Name string
	Ino  Ino
	Type uint32 // S_IFMT bits
}

// dirNode pins ino and checks that it is a directory.
func (fs *FS) dirNode(ino Ino) (*node, error) {
	n, err := fs.load(ino)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	isDir, removed := n.in.isDir(), n.removed
	n.mu.Unlock()
	if !isDir || removed {
		fs.unpin(n)
		if removed {
			return nil, syscall.ENOENT
		}
		return nil, syscall.ENOTDIR
	}
	return n, nil
}

// linkOf is the link that name in dir makes (see link).
func (fs *FS) linkOf(dir Ino, name string) link {
	l := link{dir: dir}
	copy(l.tag[:], fs.keys.names.entryTag(dir, name))
	return l
}

// staleEntry reports an entry that authenticates but that its inode does
// not list: put back from an older copy of the data dir, most likely.
func staleEntry(name string) error {
	return fmt.Errorf("entry %q is not one its inode lists (replayed from an older copy?): %w", name, ErrCorrupt)
}

func (fs *FS) entryName(dir Ino, tag []byte) string {
	return fs.keys.names.dirGroup(dir) + "/" + hex.EncodeToString(tag)
}

// readEntry finds name in dir: ENOENT if absent, ErrCorrupt if damaged.
// A pending name is found in memory: callers that change the entry on
// disk flush it first (flushPendingName).
func (fs *FS) readEntry(dir *node, name string) (*entry, error) {
	if e := fs.pendingEntry(dir, name); e != nil {
		return e, nil
	}
	tag := fs.keys.names.entryTag(dir.ino, name)
	obj, err := fs.getObject(fs.entryName(dir.ino, tag), maxEntryObject)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, err
	}
	e, err := fs.openEntry(dir, tag, obj)
	if err != nil {
		return nil, err
	}
	if e.name != name { // a 128-bit tag collision: not expected in this universe
		return nil, fmt.Errorf("entry for %q holds another name: %w", name, ErrCorrupt)
	}
	return e, nil
}

func (fs *FS) openEntry(dir *node, tag, obj []byte) (*entry, error) {
	pt, err := openInPlace(fs.aead(dir, purposeEntry), obj, entryAD(dir.ino, tag))
	if err != nil {
		return nil, fmt.Errorf("directory entry %x: %w", tag, err)
	}
	e, err := decodeEntry(pt)
	clear(pt) // the name, copied by decodeEntry
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(fs.keys.names.entryTag(dir.ino, e.name), tag) != 1 {
		return nil, fmt.Errorf("directory entry %x holds a name of another tag: %w", tag, ErrCorrupt)
	}
	return e, nil
}

func (fs *FS) storeEntry(dir *node, e *entry) error {
	defer dir.entryWrites.Add(1) // voids remembered absences (see absent)
	tag := fs.keys.names.entryTag(dir.ino, e.name)
	obj := seal(fs.aead(dir, purposeEntry), nil, e.encode(), entryAD(dir.ino, tag))
	return fs.st.Put(fs.entryName(dir.ino, tag), obj)
}

func (fs *FS) deleteEntry(dir *node, name string) error {
	return fs.st.Delete(fs.entryName(dir.ino, fs.keys.names.entryTag(dir.ino, name)))
}

// absent returns nil if dir has no entry name, EEXIST if it has one, and
// the error if the entry cannot be read (a damaged entry is not replaced).
// Callers hold dir.dirMu.
//
// The kernel looks a name up before it creates it. Lookup remembers the
// last name it found absent in a directory, with the directory's count of
// entry writes at the time, so that absent need not ask the disk again:
// one failed open fewer per new file. Every entry write (and every pending
// name) counts, so anything added since voids what was remembered.
func (fs *FS) absent(dir *node, name string) error {
	dir.mu.Lock()
	known := dir.absentName == name && dir.absentAt == dir.entryWrites.Load()
	dir.mu.Unlock()
	if known {
		return nil
	}
	_, err := fs.readEntry(dir, name)
	switch {
	case err == nil:
		return syscall.EEXIST
	case errors.Is(err, syscall.ENOENT):
		return nil
	}
	return err
}

// isEmpty reports whether directory ino has no entries.
func (fs *FS) isEmpty(ino Ino) (bool, error) {
	if fs.hasPending(ino) {
		return false, nil
	}
	for _, err := range fs.st.List(fs.keys.names.dirGroup(ino)) {
		if err != nil {
			return false, err
		}
		return false, nil
	}
	return true, nil
}

// Lookup finds name in directory parent.
func (fs *FS) Lookup(parent Ino, name string) (Attr, error) {
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	p, err := fs.begin(parent, fs.dirNode)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(p)
	at := p.entryWrites.Load()
	e, err := fs.readEntry(p, name)
	if errors.Is(err, syscall.ENOENT) {
		p.mu.Lock()
		p.absentName, p.absentAt = name, at
		p.mu.Unlock()
	}
	if err != nil {
		return Attr{}, err
	}
	return fs.entryAttr(p, e)
}

// entryAttr loads the inode that entry e of directory p points to. A
// missing inode behind an existing entry is damage, not absence, and so
// is an inode that does not list the entry.
func (fs *FS) entryAttr(p *node, e *entry) (Attr, error) {
	n, err := fs.load(e.ino)
	if errors.Is(err, syscall.ENOENT) {
		return Attr{}, fmt.Errorf("entry %q points to a missing inode: %w", e.name, ErrCorrupt)
	}
	if err != nil {
		return Attr{}, err
	}
	defer fs.unpin(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.in.mode&syscall.S_IFMT != e.typ {
		return Attr{}, fmt.Errorf("entry %q type differs from its inode: %w", e.name, ErrCorrupt)
	}
	if !n.in.hasLink(fs.linkOf(p.ino, e.name)) {
		return Attr{}, staleEntry(e.name)
	}
	return fs.attr(n), nil
}

// Owner is who creates a new inode.
type Owner struct{ UID, GID uint32 }

// Create makes a regular file; EEXIST if name exists.
func (fs *FS) Create(parent Ino, name string, mode uint32, o Owner) (Attr, error) {
	return fs.mknode(parent, name, &inode{mode: syscall.S_IFREG | mode&^syscall.S_IFMT, uid: o.UID, gid: o.GID}, true)
}

// Mkdir makes a directory.
func (fs *FS) Mkdir(parent Ino, name string, mode uint32, o Owner) (Attr, error) {
	return fs.mknode(parent, name, &inode{mode: syscall.S_IFDIR | mode&^syscall.S_IFMT, uid: o.UID, gid: o.GID}, false)
}

// Mknod makes a regular file, fifo, socket or device node; mode carries the type.
func (fs *FS) Mknod(parent Ino, name string, mode uint32, rdev uint64, o Owner) (Attr, error) {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	case 0:
		mode |= syscall.S_IFREG
	default:
		return Attr{}, syscall.EINVAL
	}
	return fs.mknode(parent, name, &inode{mode: mode, rdev: rdev, uid: o.UID, gid: o.GID}, false)
}

// Symlink makes a symbolic link to target.
func (fs *FS) Symlink(parent Ino, name, target string, o Owner) (Attr, error) {
	if target == "" {
		return Attr{}, syscall.ENOENT
	}
	if len(target) > 4095 {
		return Attr{}, syscall.ENAMETOOLONG
	}
	return fs.mknode(parent, name, &inode{
		mode: syscall.S_IFLNK | 0o777, uid: o.UID, gid: o.GID,
		target: []byte(target), size: uint64(len(target)),
	}, false)
}

// mknode makes name in parent. lazy keeps it in memory until it is
// flushed or its name is needed on disk (pending.go): for Create, whose
// file is open and will be flushed on close.
func (fs *FS) mknode(parent Ino, name string, in *inode, lazy bool) (Attr, error) {
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	p, err := fs.begin(parent, fs.dirNode)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(p)
	p.dirMu.Lock()
	defer p.dirMu.Unlock()
	if err := fs.absent(p, name); err != nil {
		return Attr{}, err
	}
	p.mu.Lock()
	if p.in.mode&syscall.S_ISGID != 0 {
		// A setgid directory gives what is made in it its group, and
		// its subdirectories its setgid bit, as on ext4.
		in.gid = p.in.gid
		if in.isDir() {
			in.mode |= syscall.S_ISGID
		}
	}
	p.mu.Unlock()
	ino, err := fs.newIno()
	if err != nil {
		return Attr{}, err
	}
	now := fs.now()
	in.atime, in.mtime, in.ctime = now, now, now
	if in.isDir() {
		in.nlink = 2
		in.parent = parent
	}
	in.addLink(fs.linkOf(parent, name))
	n := &node{ino: ino, in: in}
	if lazy {
		fs.pend(p, name, n)
	} else {
		// The inode goes first: a crash between the two writes leaves an
		// unreachable inode, never an entry pointing nowhere.
		if err := fs.storeInode(n); err != nil {
			return Attr{}, err
		}
		if err := fs.storeEntry(p, in.entry(name, ino)); err != nil {
			return Attr{}, err
		}
	}
	fs.mu.Lock()
	fs.nodes[ino] = n
	fs.mu.Unlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	fs.touch(p)
	if in.isDir() {
		p.in.nlink++
		if err := fs.storeInode(p); err != nil {
			return Attr{}, err
		}
	}
	return fs.attr(n), nil
}

// Link makes newName in newParent another name for ino.
func (fs *FS) Link(ino, newParent Ino, newName string) (Attr, error) {
	if err := checkName(newName); err != nil {
		return Attr{}, err
	}
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(n)
	if err := fs.flushName(n); err != nil { // its first name goes to disk before a second
		return Attr{}, err
	}
	p, err := fs.dirNode(newParent)
	if err != nil {
		return Attr{}, err
	}
	defer fs.unpin(p)
	p.dirMu.Lock()
	defer p.dirMu.Unlock()
	if err := fs.absent(p, newName); err != nil {
		return Attr{}, err
	}
	n.mu.Lock()
	if n.in.isDir() {
		n.mu.Unlock()
		return Attr{}, syscall.EPERM
	}
	if n.removed || n.in.nlink == 0 {
		n.mu.Unlock()
		return Attr{}, syscall.ENOENT
	}
	// The link first: a crash then leaves a count too high (a leak),
	// never too low (a file freed while a name still points to it).
	n.in.addLink(fs.linkOf(newParent, newName))
	n.in.ctime = fs.now()
	err = fs.storeInode(n)
	e := n.in.entry(newName, ino)
	n.mu.Unlock()
	if err != nil {
		return Attr{}, err
	}
	if err := fs.storeEntry(p, e); err != nil {
		return Attr{}, err
	}
	p.mu.Lock()
	fs.touch(p)
	p.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	return fs.attr(n), nil
}

// dropLink removes link l from n after its entry is gone, removing the
// inode when no link and no open handle remains. An entry n did not list
// was stale: removing it was all there was to do.
func (fs *FS) dropLink(n *node, l link) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.in.removeLink(l) {
		return nil
	}
	n.in.ctime = fs.now()
	if n.in.nlink == 0 && n.opens == 0 {
		return fs.removeNode(n)
	}
	return fs.storeInode(n)
}

// Unlink removes a non-directory name.
func (fs *FS) Unlink(parent Ino, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p, err := fs.begin(parent, fs.dirNode)
	if err != nil {
		return err
	}
	defer fs.end(p)
	p.dirMu.Lock()
	defer p.dirMu.Unlock()
	if err := fs.flushPendingName(p, name); err != nil {
		return err
	}
	e, err := fs.readEntry(p, name)
	if err != nil {
		return err
	}
	if e.typ == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	if err := fs.deleteEntry(p, name); err != nil {
		return err
	}
	p.mu.Lock()
	fs.touch(p)
	p.mu.Unlock()
	n, err := fs.load(e.ino)
	if errors.Is(err, syscall.ENOENT) {
		return nil // the entry was dangling; removing it was all there was to do
	}
	if err != nil {
		return err
	}
	defer fs.unpin(n)
	return fs.dropLink(n, fs.linkOf(p.ino, name))
}

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(parent Ino, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p, err := fs.begin(parent, fs.dirNode)
	if err != nil {
		return err
	}
	defer fs.end(p)
	fs.renameMu.Lock() // this locks two directories, like rename
	defer fs.renameMu.Unlock()
	p.dirMu.Lock()
	defer p.dirMu.Unlock()
	e, err := fs.readEntry(p, name)
	if err != nil {
		return err
	}
	if e.typ != syscall.S_IFDIR {
		return syscall.ENOTDIR
	}
	c, err := fs.load(e.ino)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if c != nil {
		defer fs.unpin(c)
		c.mu.Lock()
		stale := !c.in.hasLink(fs.linkOf(p.ino, name))
		c.mu.Unlock()
		if stale {
			// Not a name of c: removing the entry is all, c lives on
			// under its real name.
			return fs.deleteEntry(p, name)
		}
		c.dirMu.Lock()
		defer c.dirMu.Unlock()
		if empty, err := fs.isEmpty(c.ino); err != nil {
			return err
		} else if !empty {
			return syscall.ENOTEMPTY
		}
	}
	if err := fs.deleteEntry(p, name); err != nil {
		return err
	}
	if c != nil {
		if err := fs.removeDir(c); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in.nlink--
	fs.touch(p)
	return fs.storeInode(p)
}

// removeDir deletes an empty directory's inode and entry group.
func (fs *FS) removeDir(c *node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in.nlink = 0
	if err := fs.removeNode(c); err != nil {
		return err
	}
	// A foreign file left in the group by a sync client keeps the folder; harmless.
	_ = fs.st.Delete(fs.keys.names.dirGroup(c.ino))
	return nil
}

// ReadDir streams the entries of directory ino (without "." and ".."). A
// damaged entry yields ErrCorrupt and the stream goes on.
func (fs *FS) ReadDir(ino Ino) iter.Seq2[Dirent, error] {
	return func(yield func(Dirent, error) bool) {
		if err := fs.enter(); err != nil {
			yield(Dirent{}, err)
			return
		}
		defer fs.leave()
		p, err := fs.dirNode(ino)
		if err != nil {
			yield(Dirent{}, err)
			return
		}
		defer fs.unpin(p)
		if err := fs.flushNames(p); err != nil {
			yield(Dirent{}, err)
			return
		}
		group := fs.keys.names.dirGroup(ino)
		for name, err := range fs.st.List(group) {
			if err != nil {
				yield(Dirent{}, err)
				return
			}
			tag, herr := hex.DecodeString(name)
			if herr != nil || len(tag) != tagSize {
				continue // not ours
			}
			obj, err := fs.getObject(group+"/"+name, maxEntryObject)
			if errors.Is(err, storage.ErrNotExist) {
				continue // removed while listing
			}
			var e *entry
			if err == nil {
				e, err = fs.openEntry(p, tag, obj)
			}
			if err != nil {
				if !yield(Dirent{}, err) {
					return
				}
				continue
			}
			if !yield(Dirent{Name: e.name, Ino: e.ino, Type: e.typ}, nil) {
				return
			}
		}
	}
}
