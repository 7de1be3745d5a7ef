package encrypted

import (
	"errors"
	"fmt"
	"syscall"
)

// Flags of Rename, as Linux's renameat2.
const (
	// RenameNoReplace fails the rename with EEXIST when the target exists.
	RenameNoReplace = 1
	// RenameExchange swaps the two names, which must both exist.
	RenameExchange = 2
)

// maxDepth bounds the walk up a directory chain, so a corrupt parent
// pointer loop cannot spin forever.
const maxDepth = 1 << 16

// Rename moves oldName in oldParent to newName in newParent, replacing a
// file, or an empty directory with a directory.
func (fs *FS) Rename(oldParent Ino, oldName string, newParent Ino, newName string, flags uint32) error {
	if err := fs.enter(); err != nil {
		return err
	}
	defer fs.leave()
	if err := checkName(oldName); err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return syscall.EINVAL
	}
	fs.renameMu.Lock()
	defer fs.renameMu.Unlock()

	sp, err := fs.dirNode(oldParent)
	if err != nil {
		return err
	}
	defer fs.unpin(sp)
	dp := sp
	if newParent != oldParent {
		if dp, err = fs.dirNode(newParent); err != nil {
			return err
		}
		defer fs.unpin(dp)
	}
	// renameMu is held, so no other two-directory operation can take
	// these locks in the opposite order.
	sp.dirMu.Lock()
	defer sp.dirMu.Unlock()
	if dp != sp {
		dp.dirMu.Lock()
		defer dp.dirMu.Unlock()
	}

	if err := errors.Join(fs.flushPendingName(sp, oldName), fs.flushPendingName(dp, newName)); err != nil {
		return err
	}
	se, err := fs.readEntry(sp, oldName)
	if err != nil {
		return err
	}
	de, err := fs.readEntry(dp, newName)
	exists := err == nil
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if exists && flags&RenameNoReplace != 0 {
		return syscall.EEXIST
	}
	if flags&RenameExchange != 0 {
		if !exists {
			return syscall.ENOENT
		}
		return fs.exchange(sp, oldName, se, dp, newName, de)
	}
	if exists && de.ino == se.ino {
		return nil // two names of one file: POSIX says do nothing
	}
	srcDir := se.typ == syscall.S_IFDIR
	if exists {
		dstDir := de.typ == syscall.S_IFDIR
		switch {
		case srcDir && !dstDir:
			return syscall.ENOTDIR
		case !srcDir && dstDir:
			return syscall.EISDIR
		case dstDir:
			if empty, err := fs.isEmpty(de.ino); err != nil {
				return err
			} else if !empty {
				return syscall.ENOTEMPTY
			}
		}
	}
	if srcDir && sp != dp {
		if err := fs.checkNotAncestor(se.ino, dp.ino); err != nil {
			return err
		}
	}

	src, err := fs.load(se.ino)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rename %q: missing inode: %w", oldName, ErrCorrupt)
		}
		return err
	}
	defer fs.unpin(src)

	// New name first, then the old one goes: a crash in between leaves
	// the file under both names, never under none. For that moment the
	// inode lists both links, so that a crash leaves its count too high
	// (a leak), never too low (freed while a name still points to it).
	oldLink, newLink := fs.linkOf(sp.ino, oldName), fs.linkOf(dp.ino, newName)
	src.mu.Lock()
	listed := src.in.hasLink(oldLink)
	if listed {
		src.in.addLink(newLink)
		err = fs.storeInode(src)
	}
	src.mu.Unlock()
	if !listed {
		return staleEntry(oldName)
	}
	if err != nil {
		return err
	}
	if err := fs.storeEntry(dp, &entry{name: newName, ino: se.ino, typ: se.typ}); err != nil {
		return err
	}
	if err := fs.deleteEntry(sp, oldName); err != nil {
		return err
	}

	if exists {
		if err := fs.dropVictim(de, newLink); err != nil {
			return err
		}
	}
	src.mu.Lock()
	src.in.ctime = fs.now()
	src.in.removeLink(oldLink)
	if srcDir && sp != dp {
		src.in.parent = dp.ino
		err = fs.storeInode(src)
	} else {
		src.dirty = true
	}
	src.mu.Unlock()
	if err != nil {
		return err
	}

	// Link counts: a directory moved across takes its ".." along; one that
	// replaced another directory leaves the target's count where it was.
	srcDelta, dstDelta := 0, 0
	if srcDir && sp != dp {
		srcDelta, dstDelta = -1, 1
	}
	if exists && srcDir {
		dstDelta--
	}
	if dp == sp {
		return fs.updateDir(sp, srcDelta+dstDelta)
	}
	return errors.Join(fs.updateDir(sp, srcDelta), fs.updateDir(dp, dstDelta))
}

// checkNotAncestor refuses to move directory ino below itself.
func (fs *FS) checkNotAncestor(ino, dir Ino) error {
	cur := dir
	for range maxDepth {
		if cur == ino {
			return syscall.EINVAL
		}
		if cur == RootIno {
			return nil
		}
		n, err := fs.load(cur)
		if err != nil {
			return err
		}
		n.mu.Lock()
		cur = n.in.parent
		n.mu.Unlock()
		fs.unpin(n)
	}
	return fmt.Errorf("directory chain deeper than %d: %w", maxDepth, ErrCorrupt)
}

// dropVictim releases the inode a rename replaced, whose entry made link l.
func (fs *FS) dropVictim(de *entry, l link) error {
	v, err := fs.load(de.ino)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fs.unpin(v)
	if de.typ == syscall.S_IFDIR {
		v.mu.Lock()
		stale := !v.in.hasLink(l)
		v.mu.Unlock()
		if stale {
			return nil // the entry was not a name of v: v lives on
		}
		return fs.removeDir(v)
	}
	return fs.dropLink(v, l)
}

// updateDir stamps a directory as modified and adjusts its link count,
// writing it at once when the count changed.
func (fs *FS) updateDir(d *node, nlinkDelta int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	fs.touch(d)
	if nlinkDelta == 0 {
		return nil
	}
	d.in.nlink = uint32(int(d.in.nlink) + nlinkDelta)
	return fs.storeInode(d)
}

// exchange swaps two names (RENAME_EXCHANGE): the name a in sp comes to
// name b's inode, and b in dp a's, whatever their types. Both inodes list
// their new links before the entries change and drop the old ones after,
// so that a crash in between leaves a count too high, never an inode
// freed while a name points to it. Callers hold what Rename holds.
func (fs *FS) exchange(sp *node, aName string, ae *entry, dp *node, bName string, be *entry) error {
	if ae.ino == be.ino {
		return nil // two names of one file
	}
	aDir, bDir := ae.typ == syscall.S_IFDIR, be.typ == syscall.S_IFDIR
	if sp != dp {
		// Neither directory may come to sit below itself.
		if aDir {
			if err := fs.checkNotAncestor(ae.ino, dp.ino); err != nil {
				return err
			}
		}
		if bDir {
			if err := fs.checkNotAncestor(be.ino, sp.ino); err != nil {
				return err
			}
		}
	}
	a, err := fs.loadNamed(ae)
	if err != nil {
		return err
	}
	defer fs.unpin(a)
	b, err := fs.loadNamed(be)
	if err != nil {
		return err
	}
	defer fs.unpin(b)
	aLink, bLink := fs.linkOf(sp.ino, aName), fs.linkOf(dp.ino, bName)
	for _, x := range []struct {
		n        *node
		name     string
		old, new link
	}{{a, aName, aLink, bLink}, {b, bName, bLink, aLink}} {
		x.n.mu.Lock()
		listed := x.n.in.hasLink(x.old)
		if listed {
			x.n.in.addLink(x.new)
			err = fs.storeInode(x.n)
		}
		x.n.mu.Unlock()
		if !listed {
			return staleEntry(x.name)
		}
		if err != nil {
			return err
		}
	}
	if err := fs.storeEntry(sp, &entry{name: aName, ino: be.ino, typ: be.typ}); err != nil {
		return err
	}
	if err := fs.storeEntry(dp, &entry{name: bName, ino: ae.ino, typ: ae.typ}); err != nil {
		return err
	}
	now := fs.now()
	for _, x := range []struct {
		n      *node
		old    link
		parent *node
	}{{a, aLink, dp}, {b, bLink, sp}} {
		x.n.mu.Lock()
		x.n.in.removeLink(x.old)
		x.n.in.ctime = now
		if x.n.in.isDir() && sp != dp {
			x.n.in.parent = x.parent.ino
			err = fs.storeInode(x.n)
		} else {
			x.n.dirty = true
		}
		x.n.mu.Unlock()
		if err != nil {
			return err
		}
	}
	// A directory that changed parent takes its ".." along: a parent
	// that gave a directory for a non-directory has one link fewer.
	delta := 0
	if sp != dp && aDir != bDir {
		delta = 1 // a's directory moved into dp
		if bDir {
			delta = -1
		}
	}
	if sp == dp {
		return fs.updateDir(sp, 0)
	}
	return errors.Join(fs.updateDir(sp, -delta), fs.updateDir(dp, delta))
}

// loadNamed pins the inode entry e names: a missing one is damage.
func (fs *FS) loadNamed(e *entry) (*node, error) {
	n, err := fs.load(e.ino)
	if errors.Is(err, syscall.ENOENT) {
		return nil, fmt.Errorf("entry %q: missing inode: %w", e.name, ErrCorrupt)
	}
	return n, err
}
