package encrypted

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/rencfs/rencfs/encrypted/storage"
	"github.com/rencfs/rencfs/internal/erase"
)

// maxFileSize caps offsets so that chunk arithmetic never overflows.
const maxFileSize = 1 << 62

// nStripes is how many chunks of one file can be worked on at once.
const nStripes = 16

// stripe serializes the work on the chunks whose index is ≡ its position
// modulo nStripes, and holds one of them in plaintext: for reading (two
// 128 KiB FUSE reads of a 256 KiB chunk decrypt it once) or for writing.
// A dirty slot is newer than the disk; it is sealed and stored when the
// chunk is complete, when another chunk needs the slot, or when the file
// is flushed, fsync'd or synced. So a file written in small pieces costs
// one encryption and one object write per chunk, not one per piece.
type stripe struct {
	mu    sync.Mutex
	ok    bool // the slot holds chunk idx
	dirty bool
	idx   uint64
	data  []byte // plaintext; a dirty slot's is private to it

	// What a dirty slot's chunk is known to hold, as one span [from, to):
	// the bytes written since it became dirty, reaching back to 0 once
	// they join the stored content it started from (base bytes).
	base, from, to uint64
}

// copyPlain copies plaintext inside erase.Do: a signal that interrupts the
// copy saves the vector registers holding it in a frame that erase.Do
// clears. It allocates nothing there, which keeps it cheap: erase.Do
// tracks every allocation made inside it until it is freed.
func copyPlain(dst, src []byte) (n int) {
	erase.Do(func() { n = copy(dst, src) })
	return n
}

// drop empties the slot, zeroing its plaintext first: a slot's data is
// always its own (loadChunk copies inline content), so nothing else
// reads it once the slot lets go.
func (s *stripe) drop() {
	clear(s.data[:cap(s.data)])
	s.ok, s.data = false, nil
}

// regular pins ino and checks that it is a regular file.
func (fs *FS) regular(ino Ino) (*node, error) {
	n, err := fs.load(ino)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	mode := n.in.mode & syscall.S_IFMT
	n.mu.Unlock()
	switch mode {
	case syscall.S_IFREG:
		return n, nil
	case syscall.S_IFDIR:
		fs.unpin(n)
		return nil, syscall.EISDIR
	}
	fs.unpin(n)
	return nil, syscall.EINVAL
}

func (n *node) stripe(idx uint64) *stripe { return &n.stripes[idx%nStripes] }

// maxInline is the largest chunk 0 kept inside the inode object instead
// of a chunk object of its own: most files are small, and this stores one
// object fewer for each of them. It is a format constant (docs/format.md).
const maxInline = 4096

// loadChunk reads and opens chunk idx from disk: its plaintext as stored
// (shorter than a chunk at the end of a file), or nil for a hole. An
// inline chunk 0 comes from the inode; callers must not change it.
func (fs *FS) loadChunk(n *node, idx uint64) ([]byte, error) {
	n.mu.Lock()
	present := n.in.extents.contains(idx)
	inline := n.in.inline
	n.mu.Unlock()
	if !present {
		if idx == 0 && len(inline) > 0 {
			// A copy, so that a slot owns its data and may zero it.
			c := make([]byte, len(inline))
			copyPlain(c, inline)
			return c, nil
		}
		return nil, nil
	}
	obj, err := fs.st.GetChunk(uint64(n.ino), idx, int(fs.cs)+maxSealOverhead)
	err = badIsCorrupt(err)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("file %016x chunk %d is missing: %w", uint64(n.ino), idx, ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", idx, err)
	}
	pt, err := openInPlace(fs.aead(n, purposeContent), obj, chunkAD(n.ino, idx))
	if err != nil {
		return nil, fmt.Errorf("file %016x chunk %d: %w", uint64(n.ino), idx, err)
	}
	if uint64(len(pt)) > fs.cs {
		return nil, fmt.Errorf("file %016x chunk %d is oversized: %w", uint64(n.ino), idx, ErrCorrupt)
	}
	return pt, nil
}

// chunk returns chunk idx's current plaintext, from the slot or the disk,
// caching what it read when the slot is free. Callers hold s.mu and may
// use the result only while they do; one the slot did not keep
// (s.holds(idx) is false) is theirs to zero.
func (fs *FS) chunk(n *node, s *stripe, idx uint64) ([]byte, error) {
	if s.ok && s.idx == idx {
		return s.data, nil
	}
	pt, err := fs.loadChunk(n, idx)
	if err != nil {
		return nil, err
	}
	if !s.dirty {
		s.ok, s.idx, s.data = true, idx, pt
	}
	return pt, nil
}

// holds reports whether the slot holds chunk idx.
func (s *stripe) holds(idx uint64) bool { return s.ok && s.idx == idx }

// storeChunk seals and stores chunk idx, then lists it in the extents; a
// small chunk 0 goes into the inode instead, stored with it.
func (fs *FS) storeChunk(n *node, idx uint64, pt []byte) error {
	if idx == 0 && len(pt) <= maxInline && uint64(len(pt)) < fs.cs { // a full chunk stays a chunk
		return fs.storeInline(n, pt)
	}
	// Sealed chunks are up to a chunk size each and die at once: reuse
	// their buffers (storage keeps nothing after PutChunk returns).
	buf, _ := fs.chunkBufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	obj := seal(fs.aead(n, purposeContent), (*buf)[:0], pt, chunkAD(n.ino, idx))
	n.mu.Lock()
	listed := n.in.extents.contains(idx)
	n.mu.Unlock()
	put := fs.st.PutChunk
	if !listed {
		put = fs.st.PutNewChunk // the inode lists it only once it is whole
	}
	err := put(uint64(n.ino), idx, obj)
	*buf = obj
	fs.chunkBufs.Put(buf)
	if err != nil {
		return fmt.Errorf("write chunk %d: %w", idx, err)
	}
	n.mu.Lock()
	n.in.extents = n.in.extents.add(idx)
	if idx == 0 {
		clear(n.in.inline)
		n.in.inline = nil
	}
	n.dirty = true
	n.mu.Unlock()
	return nil
}

// storeInline makes pt chunk 0's content, inside the inode. A chunk 0 object
// it replaces is deleted only once the inode no longer lists it.
func (fs *FS) storeInline(n *node, pt []byte) error {
	n.mu.Lock()
	clear(n.in.inline)
	n.in.inline = make([]byte, len(pt)) // a copy: pt may be a slot others read
	copyPlain(n.in.inline, pt)
	stored := n.in.extents.contains(0)
	n.in.extents = n.in.extents.dropFirst()
	n.dirty = true
	var err error
	if stored {
		err = fs.storeInode(n)
	}
	n.mu.Unlock()
	if err != nil || !stored {
		return err
	}
	if err := fs.st.DeleteChunk(uint64(n.ino), 0); err != nil {
		return fmt.Errorf("delete chunk 0 of %016x: %w", uint64(n.ino), err)
	}
	return nil
}

// flushStripe stores a dirty slot. Callers hold s.mu.
func (fs *FS) flushStripe(n *node, s *stripe) error {
	if !s.dirty {
		return nil
	}
	if err := fs.storeChunk(n, s.idx, s.data); err != nil {
		return err
	}
	n.markClean(s)
	return nil
}

// markClean records that s's slot holds nothing unsaved any more. Callers
// hold s.mu.
func (n *node) markClean(s *stripe) {
	if !s.dirty {
		return
	}
	s.dirty = false
	n.mu.Lock()
	n.dirtyChunks--
	n.mu.Unlock()
}

// flushChunks stores every dirty slot of n; drop also empties the slots.
// Callers hold n.content (shared is enough).
func (fs *FS) flushChunks(n *node, drop bool) error {
	var first error
	for i := range n.stripes {
		s := &n.stripes[i]
		s.mu.Lock()
		err := fs.flushStripe(n, s)
		if err == nil && drop {
			s.drop()
		}
		s.mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Read reads from ino at off into buf; short only at end of file.
func (fs *FS) Read(ino Ino, buf []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	n, err := fs.begin(ino, fs.regular)
	if err != nil {
		return 0, err
	}
	defer fs.end(n)
	n.content.RLock()
	defer n.content.RUnlock()
	n.mu.Lock()
	size := n.in.size
	n.mu.Unlock()
	if uint64(off) >= size {
		return 0, nil
	}
	end := min(uint64(off)+uint64(len(buf)), size)
	for pos := uint64(off); pos < end; {
		idx, co := pos/fs.cs, pos%fs.cs
		nb := min(fs.cs-co, end-pos)
		dst := buf[pos-uint64(off) : pos-uint64(off)+nb]
		fs.readAhead(n, idx+1, size)
		s := n.stripe(idx)
		s.mu.Lock()
		pt, err := fs.chunk(n, s, idx)
		copied := 0
		if err == nil && co < uint64(len(pt)) {
			copied = copyPlain(dst, pt[co:])
		}
		if !s.holds(idx) {
			clear(pt) // read past a slot holding unsaved content
		} else if co+nb == fs.cs && !s.dirty {
			// Read to its end: a sequential reader is done with it.
			s.drop()
		}
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		clear(dst[copied:]) // a hole, or past a short chunk: zeros
		pos += nb
	}
	return int(end - uint64(off)), nil
}

// Write writes data to ino at off. Only the chunks it touches are
// re-encrypted; writes to different chunks run in parallel.
func (fs *FS) Write(ino Ino, data []byte, off int64) (int, error) {
	if off < 0 || uint64(off)+uint64(len(data)) > maxFileSize {
		return 0, syscall.EFBIG
	}
	n, err := fs.begin(ino, fs.regular)
	if err != nil {
		return 0, err
	}
	defer fs.end(n)
	n.content.RLock()
	defer n.content.RUnlock()
	end := uint64(off) + uint64(len(data))
	for pos := uint64(off); pos < end; {
		idx, co := pos/fs.cs, pos%fs.cs
		nb := min(fs.cs-co, end-pos)
		s := n.stripe(idx)
		s.mu.Lock()
		err := fs.writeChunk(n, s, idx, co, data[pos-uint64(off):pos-uint64(off)+nb])
		s.mu.Unlock()
		if err != nil {
			return int(pos - uint64(off)), err
		}
		pos += nb
	}
	return len(data), nil
}

// writeChunk puts p at offset co of chunk idx, in the stripe's slot.
// Callers hold s.mu.
func (fs *FS) writeChunk(n *node, s *stripe, idx, co uint64, p []byte) error {
	if s.ok && s.idx != idx {
		if err := fs.flushStripe(n, s); err != nil {
			return err
		}
		s.drop()
	}
	end := co + uint64(len(p))
	if co == 0 && end == fs.cs {
		// A whole chunk: no need to read the old one, nor to keep it.
		if err := fs.storeChunk(n, idx, p); err != nil {
			return err
		}
		n.markClean(s)
		s.drop()
		fs.grow(n, idx*fs.cs+end)
		return nil
	}
	if !s.dirty {
		old, err := fs.chunk(n, s, idx)
		if err != nil {
			return err
		}
		// A private copy, since readers may hold old; room to grow as
		// appends do, without a whole chunk's allocation for a small file.
		buf := make([]byte, len(old), min(fs.cs, max(end, 2*uint64(len(old)), 4096)))
		copyPlain(buf, old)
		clear(old) // the slot kept it (it was free): buf replaces it
		s.ok, s.idx, s.data, s.dirty = true, idx, buf, true
		s.base, s.from, s.to = uint64(len(old)), co, end
		n.mu.Lock()
		n.dirtyChunks++
		n.mu.Unlock()
	}
	if l := uint64(len(s.data)); end > l {
		if end > uint64(cap(s.data)) {
			// Grown by hand: the old array is zeroed, not left to the heap.
			grown := make([]byte, l, min(fs.cs, max(end, 2*uint64(cap(s.data)))))
			copyPlain(grown, s.data)
			clear(s.data[:cap(s.data)])
			s.data = grown
		}
		s.data = s.data[:end]
		clear(s.data[l:max(l, co)]) // a gap inside the chunk reads as zeros
	}
	copyPlain(s.data[co:], p)
	fs.grow(n, idx*fs.cs+uint64(len(s.data)))
	if s.from, s.to = min(s.from, co), max(s.to, end); s.from <= s.base {
		s.from = 0
	}
	if s.from == 0 && s.to == fs.cs {
		// The whole chunk is known, so the writer has most likely moved
		// on. Not before: the kernel's write-back sends pieces of a file
		// out of order, and a chunk stored with its head still to come
		// would be stored twice.
		return fs.flushStripe(n, s)
	}
	return nil
}

// grow extends the size to at least size and stamps the modification.
func (fs *FS) grow(n *node, size uint64) {
	n.mu.Lock()
	n.in.size = max(n.in.size, size)
	fs.touch(n)
	n.mu.Unlock()
}

// truncate sets n's size. Shrinking trims the new last chunk (so that a
// later extension reads zeros, not old bytes) and deletes the chunks past it.
func (fs *FS) truncate(n *node, size uint64) error {
	if size > maxFileSize {
		return syscall.EFBIG
	}
	n.content.Lock()
	defer n.content.Unlock()
	n.mu.Lock()
	mode, old := n.in.mode&syscall.S_IFMT, n.in.size
	n.mu.Unlock()
	switch mode {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		return syscall.EISDIR
	default:
		return syscall.EINVAL
	}
	// content.Lock excludes every reader and writer: the slots are ours.
	if err := fs.flushChunks(n, true); err != nil {
		return err
	}
	if size >= old {
		n.mu.Lock()
		n.in.size = size
		fs.touch(n)
		n.mu.Unlock()
		return nil
	}
	last, co := size/fs.cs, size%fs.cs
	keep := last
	if co != 0 {
		keep++
		pt, err := fs.loadChunk(n, last)
		if err != nil {
			return err
		}
		if uint64(len(pt)) > co {
			err = fs.storeChunk(n, last, pt[:co])
		}
		clear(pt)
		if err != nil {
			return err
		}
	}
	n.mu.Lock()
	dropped := slices.Clone(n.in.extents)
	n.in.size = size
	n.in.extents = n.in.extents.truncate(keep)
	if keep == 0 {
		clear(n.in.inline)
		n.in.inline = nil
	}
	fs.touch(n)
	// The inode must forget the chunks before they go, or a crash would
	// leave it pointing at deleted chunks.
	err := fs.storeInode(n)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return fs.deleteChunks(n.ino, dropped, keep)
}
