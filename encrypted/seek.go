package encrypted

import (
	"syscall"
)

// Whence values of Seek, as lseek(2)'s.
const (
	SeekData = 3 // SEEK_DATA: the next offset holding data
	SeekHole = 4 // SEEK_HOLE: the next offset in a hole (the end of file counts)
)

// Seek answers lseek's SEEK_DATA and SEEK_HOLE for ino from off, at chunk
// granularity: a chunk is data if it is stored, inline, or holds unsaved
// content; any other chunk below the size is a hole. ENXIO at or past
// the end of file, and for SEEK_DATA when no data follows off.
func (fs *FS) Seek(ino Ino, off uint64, whence int) (uint64, error) {
	if whence != SeekData && whence != SeekHole {
		return 0, syscall.EINVAL
	}
	n, err := fs.begin(ino, fs.regular)
	if err != nil {
		return 0, err
	}
	defer fs.end(n)
	n.content.RLock() // no truncate meanwhile
	defer n.content.RUnlock()
	var dirty []uint64
	for i := range n.stripes {
		s := &n.stripes[i]
		s.mu.Lock()
		if s.dirty {
			dirty = append(dirty, s.idx)
		}
		s.mu.Unlock()
	}
	n.mu.Lock()
	size, x, inline := n.in.size, n.in.extents, len(n.in.inline) > 0
	n.mu.Unlock()
	if off >= size {
		return 0, syscall.ENXIO
	}
	unsaved := func(idx uint64) bool {
		for _, d := range dirty {
			if d == idx {
				return true
			}
		}
		return idx == 0 && inline
	}
	idx := off / fs.cs
	if whence == SeekData {
		next := uint64(1<<64 - 1) // the first data chunk at or after idx
		if i := x.find(idx); i < len(x) {
			next = max(x[i].start, idx)
		}
		for _, d := range dirty {
			if d >= idx && d < next {
				next = d
			}
		}
		if idx == 0 && inline {
			next = 0
		}
		if next == 1<<64-1 || next*fs.cs >= size {
			return 0, syscall.ENXIO
		}
		return max(off, next*fs.cs), nil
	}
	// SeekHole: walk over data, an extent at a time.
	for idx*fs.cs < size {
		if i := x.find(idx); i < len(x) && x[i].start <= idx {
			idx = x[i].end
			continue
		}
		if !unsaved(idx) {
			break
		}
		idx++
	}
	return min(max(off, idx*fs.cs), size), nil
}
