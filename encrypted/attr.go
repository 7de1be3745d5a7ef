package encrypted

import (
	"fmt"
	"syscall"
	"time"
)

// Attr is what stat reports for an inode.
type Attr struct {
	Ino                 Ino
	Mode                uint32 // S_IFMT type bits and permission bits
	Nlink               uint32
	UID, GID            uint32
	Rdev                uint64
	Size                uint64
	Blocks              uint64 // 512-byte blocks of content written
	Atime, Mtime, Ctime time.Time
	Parent              Ino // directories: the one holding it (the root's is itself)
}

// IsDir reports whether the attributes are a directory's.
func (a Attr) IsDir() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// attr builds the Attr of n. Callers hold n.mu.
func (fs *FS) attr(n *node) Attr {
	in := n.in
	a := Attr{
		Ino: n.ino, Mode: in.mode, Nlink: in.nlink, UID: in.uid, GID: in.gid, Rdev: in.rdev,
		Size: in.size, Atime: in.atime, Mtime: in.mtime, Ctime: in.ctime,
	}
	switch {
	case in.isDir():
		a.Size = 4096
		a.Blocks = 8
		a.Parent = in.parent
	case in.isReg():
		var bytes uint64
		for _, e := range in.extents {
			bytes += (e.end - e.start) * fs.cs
		}
		bytes += uint64(len(in.inline))
		a.Blocks = (min(bytes, in.size) + 511) / 512
	}
	return a
}

// GetAttr returns the attributes of ino.
func (fs *FS) GetAttr(ino Ino) (Attr, error) {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	return fs.attr(n), nil
}

// SetAttr says which attributes to change; nil fields stay as they are.
type SetAttr struct {
	Mode         *uint32 // permission bits (and setuid/setgid/sticky); the type stays
	UID, GID     *uint32
	Size         *uint64
	Atime, Mtime *time.Time
}

// SetAttr changes attributes of ino and returns the result. A size change
// truncates or extends the file (with a hole).
func (fs *FS) SetAttr(ino Ino, s SetAttr) (Attr, error) {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(n)
	if s.Size != nil {
		if err := fs.truncate(n, *s.Size); err != nil {
			return Attr{}, err
		}
	}
	n.mu.Lock()
	in := n.in
	if s.Mode != nil {
		in.mode = in.mode&syscall.S_IFMT | *s.Mode&^syscall.S_IFMT
	}
	if s.UID != nil {
		in.uid = *s.UID
	}
	if s.GID != nil {
		in.gid = *s.GID
	}
	if s.Atime != nil {
		in.atime = *s.Atime
	}
	if s.Mtime != nil {
		in.mtime = *s.Mtime
	}
	in.ctime = fs.now()
	n.dirty = true
	a := fs.attr(n)
	idle := n.opens == 0 && n.pendDir == nil && !n.removed
	n.mu.Unlock()
	if idle {
		// No close will store it: queue it, so that changed inodes do not
		// pile up in memory (chmod -R over a million files), while the
		// three changes tar makes to each directory cost one write.
		if err := fs.queueAttr(n); err != nil {
			return Attr{}, err
		}
	}
	return a, nil
}

// maxAttrQueue is how many changed inodes without an open handle wait in
// memory before they are stored together.
const maxAttrQueue = 1024

// queueAttr pins changed n until the queue is full (or Sync), then stores
// the queue.
func (fs *FS) queueAttr(n *node) error {
	fs.pin(n)
	fs.mu.Lock()
	fs.attrQueue = append(fs.attrQueue, n)
	var batch []*node
	if len(fs.attrQueue) >= maxAttrQueue {
		batch, fs.attrQueue = fs.attrQueue, nil
	}
	fs.mu.Unlock()
	return fs.flushAttrQueue(batch)
}

// flushAttrQueue stores and unpins queued nodes.
func (fs *FS) flushAttrQueue(batch []*node) error {
	var first error
	for _, n := range batch {
		if err := fs.flushData(n, false); err != nil && first == nil {
			first = err
		}
		fs.unpin(n)
	}
	return first
}

// Readlink returns a symlink's target.
func (fs *FS) Readlink(ino Ino) (string, error) {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return "", err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.in.mode&syscall.S_IFMT != syscall.S_IFLNK {
		return "", fmt.Errorf("readlink: %w", syscall.EINVAL)
	}
	return string(n.in.target), nil
}

// Open notes an open handle on ino: an unlinked file's content lives until
// its last handle is released.
func (fs *FS) Open(ino Ino) (Attr, error) {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return Attr{}, err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opens++
	return fs.attr(n), nil
}

// Flush writes back ino's unsaved content and attributes (on close(2));
// it does not fsync.
func (fs *FS) Flush(ino Ino) error {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return err
	}
	defer fs.end(n)
	return fs.flush(n)
}

func (fs *FS) flush(n *node) error {
	// fsync of a directory makes its names durable: the pending ones too.
	if err := fs.flushNames(n); err != nil {
		return err
	}
	return fs.flushNode(n, false)
}

// Release ends a handle opened with Open, storing what the file still
// holds in memory. The last handle of an unlinked file removes it.
func (fs *FS) Release(ino Ino) error {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return err
	}
	defer fs.end(n)
	n.mu.Lock()
	if n.opens > 0 {
		n.opens--
	}
	last, unlinked := n.opens == 0, n.in.nlink == 0
	n.mu.Unlock()
	if !(last && unlinked) {
		return fs.flushNode(n, last)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed || n.opens > 0 || n.in.nlink > 0 {
		return nil // reopened or relinked meanwhile, or already gone
	}
	return fs.removeNode(n)
}

// Fsync makes ino's content and metadata durable. The backend syncs
// everything pending, which includes ino's.
func (fs *FS) Fsync(ino Ino) error {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return err
	}
	defer fs.end(n)
	if err := fs.flush(n); err != nil {
		return err
	}
	return fs.st.Sync()
}

// touch sets mtime and ctime to now and marks n dirty. Callers hold n.mu.
func (fs *FS) touch(n *node) {
	now := fs.now()
	n.in.mtime, n.in.ctime = now, now
	n.dirty = true
}
