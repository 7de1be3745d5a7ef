package encrypted

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// MaxFileSize caps offsets so that chunk arithmetic never overflows.
const MaxFileSize = 1 << 62

// chunkCache keeps the plaintext of the chunk last read or written, so
// that two 128 KiB FUSE requests into one 256 KiB chunk decrypt it once.
// Its data is never modified in place: writers install a new slice.
type chunkCache struct {
	ok   bool
	idx  uint64
	data []byte
}

// regular pins ino and checks that it is a regular file.
func (fs *FS) regular(ino Ino) (*node, error) {
	n, err := fs.get(ino)
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
		fs.put(n)
		return nil, syscall.EISDIR
	}
	fs.put(n)
	return nil, syscall.EINVAL
}

// stripe is the lock serializing read-modify-write of chunk idx.
func (n *node) stripe(idx uint64) *sync.Mutex { return &n.stripes[idx%uint64(len(n.stripes))] }

// readChunk returns chunk idx's plaintext as stored (shorter than a chunk
// at the end of a file; nil for a hole). Callers hold the chunk's stripe.
func (fs *FS) readChunk(n *node, idx uint64) ([]byte, error) {
	n.mu.Lock()
	if n.cache.ok && n.cache.idx == idx {
		data := n.cache.data
		n.mu.Unlock()
		return data, nil
	}
	present := n.in.extents.contains(idx)
	n.mu.Unlock()
	if !present {
		return nil, nil
	}
	obj, err := fs.st.GetChunk(uint64(n.ino), idx)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("file %016x chunk %d is missing: %w", uint64(n.ino), idx, ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", idx, err)
	}
	pt, err := open(fs.aead(n, purposeContent), obj, chunkAD(n.ino, idx))
	if err != nil {
		return nil, fmt.Errorf("file %016x chunk %d: %w", uint64(n.ino), idx, err)
	}
	if uint64(len(pt)) > fs.cs {
		return nil, fmt.Errorf("file %016x chunk %d is oversized: %w", uint64(n.ino), idx, ErrCorrupt)
	}
	n.mu.Lock()
	n.cache = chunkCache{ok: true, idx: idx, data: pt}
	n.mu.Unlock()
	return pt, nil
}

// Read reads from ino at off into buf; short only at end of file.
func (fs *FS) Read(ino Ino, buf []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	n, err := fs.regular(ino)
	if err != nil {
		return 0, err
	}
	defer fs.put(n)
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
		s := n.stripe(idx)
		s.Lock()
		pt, err := fs.readChunk(n, idx)
		s.Unlock()
		if err != nil {
			return 0, err
		}
		copied := 0
		if co < uint64(len(pt)) {
			copied = copy(dst, pt[co:])
		}
		clear(dst[copied:]) // a hole, or past a short chunk: zeros
		pos += nb
	}
	return int(end - uint64(off)), nil
}

// Write writes data to ino at off. Only the chunks it touches are
// re-encrypted; writes to different chunks run in parallel.
func (fs *FS) Write(ino Ino, data []byte, off int64) (int, error) {
	if off < 0 || uint64(off)+uint64(len(data)) > MaxFileSize {
		return 0, syscall.EFBIG
	}
	n, err := fs.regular(ino)
	if err != nil {
		return 0, err
	}
	defer fs.put(n)
	n.content.RLock()
	defer n.content.RUnlock()
	end := uint64(off) + uint64(len(data))
	for pos := uint64(off); pos < end; {
		idx, co := pos/fs.cs, pos%fs.cs
		nb := min(fs.cs-co, end-pos)
		s := n.stripe(idx)
		s.Lock()
		err := fs.writeChunk(n, idx, co, data[pos-uint64(off):pos-uint64(off)+nb])
		s.Unlock()
		if err != nil {
			return int(pos - uint64(off)), err
		}
		pos += nb
	}
	return len(data), nil
}

// writeChunk puts p at offset co of chunk idx. Callers hold its stripe.
func (fs *FS) writeChunk(n *node, idx, co uint64, p []byte) error {
	var old []byte
	if co != 0 || uint64(len(p)) != fs.cs {
		var err error
		if old, err = fs.readChunk(n, idx); err != nil {
			return err
		}
	}
	buf := make([]byte, max(uint64(len(old)), co+uint64(len(p))))
	copy(buf, old)
	copy(buf[co:], p)
	obj := seal(fs.aead(n, purposeContent), nil, buf, chunkAD(n.ino, idx))
	if err := fs.st.PutChunk(uint64(n.ino), idx, obj); err != nil {
		return fmt.Errorf("write chunk %d: %w", idx, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.in.extents = n.in.extents.add(idx)
	n.in.size = max(n.in.size, idx*fs.cs+uint64(len(buf)))
	n.cache = chunkCache{ok: true, idx: idx, data: buf}
	fs.touch(n)
	return nil
}

// truncate sets n's size. Shrinking trims the new last chunk (so that a
// later extension reads zeros, not old bytes) and deletes the chunks past it.
func (fs *FS) truncate(n *node, size uint64) error {
	if size > MaxFileSize {
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
		// content.Lock excludes every reader and writer: no stripe needed.
		pt, err := fs.readChunk(n, last)
		if err != nil {
			return err
		}
		if uint64(len(pt)) > co {
			pt = pt[:co:co]
			obj := seal(fs.aead(n, purposeContent), nil, pt, chunkAD(n.ino, last))
			if err := fs.st.PutChunk(uint64(n.ino), last, obj); err != nil {
				return fmt.Errorf("write chunk %d: %w", last, err)
			}
		}
	}
	n.mu.Lock()
	dropped := slices.Clone(n.in.extents)
	n.in.size = size
	n.in.extents = n.in.extents.truncate(keep)
	n.cache = chunkCache{}
	fs.touch(n)
	// The inode must forget the chunks before they go, or a crash would
	// leave it pointing at deleted chunks.
	err := fs.writeInode(n)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return fs.deleteChunks(n.ino, dropped, keep)
}
