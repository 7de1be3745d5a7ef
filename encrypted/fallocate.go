package encrypted

import (
	"syscall"
)

// Modes of Fallocate, as fallocate(2)'s.
const (
	FallocKeepSize  = 0x01 // do not change the size
	FallocPunchHole = 0x02 // make the range a hole (with FallocKeepSize)
	FallocZeroRange = 0x10 // make the range read as zeros
)

// Fallocate reserves or clears [off, off+length) of ino. Mode 0 and
// FallocKeepSize store encrypted zero chunks in the range's holes, so
// that writes there need no more space (and blocks count them); mode 0
// also extends the size. FallocPunchHole|FallocKeepSize drops the whole
// chunks of the range (their objects are deleted) and zeroes the partial
// ones at its edges; FallocZeroRange does the same and, without
// FallocKeepSize, extends the size. Other modes are EOPNOTSUPP.
func (fs *FS) Fallocate(ino Ino, mode uint32, off, length uint64) error {
	switch mode {
	case 0, FallocKeepSize, FallocPunchHole | FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize:
	default:
		return syscall.EOPNOTSUPP // collapse, insert, unshare; punch without keep-size
	}
	if length == 0 {
		return syscall.EINVAL
	}
	end := off + length
	if end < off || end > maxFileSize {
		return syscall.EFBIG
	}
	n, err := fs.begin(ino, fs.regular)
	if err != nil {
		return err
	}
	defer fs.end(n)
	n.content.Lock() // like truncate: no reader or writer meanwhile
	defer n.content.Unlock()
	if err := fs.flushChunks(n, true); err != nil {
		return err
	}
	if mode&(FallocPunchHole|FallocZeroRange) != 0 {
		err = fs.punch(n, off, end)
	} else {
		err = fs.reserve(n, off, end)
	}
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if mode&FallocKeepSize == 0 && end > n.in.size {
		n.in.size = end
		fs.touch(n)
	}
	n.in.ctime = fs.now()
	n.dirty = true
	return nil
}

// reserve stores a chunk of zeros for every chunk of [off, end) that has
// none. Callers hold n.content alone.
func (fs *FS) reserve(n *node, off, end uint64) error {
	var zeros []byte
	for idx := off / fs.cs; idx*fs.cs < end; idx++ {
		n.mu.Lock()
		stored := n.in.extents.contains(idx)
		inline := idx == 0 && len(n.in.inline) > 0
		n.mu.Unlock()
		if stored {
			continue
		}
		if zeros == nil {
			zeros = make([]byte, fs.cs)
		}
		pt := zeros
		if inline { // chunk 0 leaves the inode: its content, then zeros
			pt = make([]byte, fs.cs)
			n.mu.Lock()
			copyPlain(pt, n.in.inline)
			n.mu.Unlock()
		}
		err := fs.storeChunk(n, idx, pt)
		if inline {
			clear(pt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// punch makes [off, end) read as zeros: the chunks it covers whole leave
// the extents (the inode is stored first, then their objects deleted,
// so no crash leaves the inode listing a deleted chunk), the partial ones
// at its edges are rewritten with that part zeroed. Callers hold
// n.content alone, with the slots flushed.
func (fs *FS) punch(n *node, off, end uint64) error {
	first, last := (off+fs.cs-1)/fs.cs, end/fs.cs // whole chunks: [first, last)
	for _, idx := range []uint64{off / fs.cs, end / fs.cs} {
		if idx >= first && idx < last || idx*fs.cs >= end {
			continue // whole, or past the range
		}
		if err := fs.zeroPart(n, idx, off, end); err != nil {
			return err
		}
		if first > last { // off and end in one chunk: done
			return nil
		}
	}
	if first >= last {
		return nil
	}
	n.mu.Lock()
	gone := n.in.extents.within(first, last)
	n.in.extents = n.in.extents.remove(first, last)
	if first == 0 {
		clear(n.in.inline)
		n.in.inline = nil
	}
	err := fs.storeInode(n)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return fs.deleteChunks(n.ino, gone, 0)
}

// zeroPart rewrites chunk idx with its bytes in [off, end) zeroed; a hole
// stays a hole.
func (fs *FS) zeroPart(n *node, idx, off, end uint64) error {
	pt, err := fs.loadChunk(n, idx)
	if err != nil || pt == nil {
		return err
	}
	defer clear(pt)
	base := idx * fs.cs
	from, to := max(off, base)-base, min(end-base, uint64(len(pt)))
	if from >= to {
		return nil
	}
	clear(pt[from:to])
	return fs.storeChunk(n, idx, pt)
}
