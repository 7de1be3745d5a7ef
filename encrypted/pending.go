package encrypted

import (
	"maps"
	"slices"
)

// A regular file made by Create is held in memory until its first flush
// (close, fsync, sync, the idle wipe) or until an operation needs its name
// on disk (unlink, rename, link, readdir). Then its content, its inode and
// its entry are stored in that order (flushName). Most new files are
// written and closed at once, so this stores two objects per small file,
// not an empty inode and entry first and the inode again at close. A file
// never flushed is lost in a crash, as its unsaved content would be: POSIX
// promises nothing before fsync.

// pend records n, just created as name in dir, as not yet stored. It pins
// dir, which must stay cached while it holds a pending name. Callers hold
// dir.dirMu and own n alone.
func (fs *FS) pend(dir *node, name string, n *node) {
	n.dirty = true
	n.pendDir, n.pendName = dir, name
	dir.mu.Lock()
	if dir.pending == nil {
		dir.pending = map[string]*node{}
	}
	dir.pending[name] = n
	dir.mu.Unlock()
	dir.entryWrites.Add(1) // a name, as an entry write would be
	fs.pin(dir)
}

// pendingEntry returns the entry of a pending name in dir, or nil.
func (fs *FS) pendingEntry(dir *node, name string) *entry {
	dir.mu.Lock()
	n := dir.pending[name]
	dir.mu.Unlock()
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.in.entry(name, n.ino)
}

// flushPendingName stores name in dir if it is pending. Callers hold dir.dirMu.
func (fs *FS) flushPendingName(dir *node, name string) error {
	dir.mu.Lock()
	n := dir.pending[name]
	dir.mu.Unlock()
	if n == nil {
		return nil
	}
	return fs.flushNameLocked(dir, n)
}

// flushNames stores every pending name in dir. Callers hold no dirMu.
func (fs *FS) flushNames(dir *node) error {
	dir.dirMu.Lock()
	defer dir.dirMu.Unlock()
	dir.mu.Lock()
	nodes := slices.Collect(maps.Values(dir.pending))
	dir.mu.Unlock()
	for _, n := range nodes {
		if err := fs.flushNameLocked(dir, n); err != nil {
			return err
		}
	}
	return nil
}

// flushName stores n's name if n is pending. Callers hold no dirMu.
func (fs *FS) flushName(n *node) error {
	n.mu.Lock()
	dir := n.pendDir
	if dir != nil {
		fs.pin(dir) // flushNameLocked may drop the pending pin
	}
	n.mu.Unlock()
	if dir == nil {
		return nil
	}
	defer fs.unpin(dir)
	dir.dirMu.Lock()
	defer dir.dirMu.Unlock()
	return fs.flushNameLocked(dir, n)
}

// flushNameLocked stores pending n: content and inode first, then the entry,
// so that a crash in between leaves an unreachable inode, never an entry
// pointing nowhere. Callers hold dir.dirMu, which keeps n pending in dir
// (or not) until it returns.
func (fs *FS) flushNameLocked(dir, n *node) error {
	n.mu.Lock()
	name, still := n.pendName, n.pendDir == dir
	n.mu.Unlock()
	if !still {
		return nil // flushed meanwhile
	}
	if err := fs.flushData(n, false); err != nil {
		return err
	}
	n.mu.Lock()
	e := n.in.entry(name, n.ino)
	n.mu.Unlock()
	if err := fs.storeEntry(dir, e); err != nil {
		return err
	}
	n.mu.Lock()
	n.pendDir, n.pendName = nil, ""
	n.mu.Unlock()
	dir.mu.Lock()
	delete(dir.pending, name)
	dir.mu.Unlock()
	fs.unpin(dir)
	return nil
}

// hasPending reports whether cached directory ino holds pending names.
func (fs *FS) hasPending(ino Ino) bool {
	fs.mu.Lock()
	n := fs.nodes[ino]
	fs.mu.Unlock()
	if n == nil {
		return false // pending names pin their directory: it would be cached
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending) > 0
}
