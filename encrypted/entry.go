package encrypted

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"

	"lukechampine.com/blake3"

	"github.com/rencfs/rencfs/internal/erase"
)

// entry is the decrypted content of a directory-entry object: one name in
// one directory. Each name is its own object, found by a keyed hash of
// (directory, name), so lookup and create cost O(1) in any directory.
type entry struct {
	name string
	ino  Ino
	typ  uint32 // S_IFMT bits of the target
}

const (
	entryVersion = 1
	tagSize      = 16 // bytes of keyed BLAKE3 kept for on-disk names
	// MaxNameLen is the longest name a directory entry may have, as on Linux.
	MaxNameLen = 255
	// maxEntryObject is the largest valid entry object.
	maxEntryObject = 10 + MaxNameLen + maxSealOverhead
)

func (e *entry) encode() []byte {
	b := make([]byte, 0, 10+len(e.name))
	b = append(b, entryVersion, byte(e.typ>>12))
	b = binary.BigEndian.AppendUint64(b, uint64(e.ino))
	return append(b, e.name...)
}

func decodeEntry(b []byte) (*entry, error) {
	if len(b) < 11 || len(b) > 10+MaxNameLen {
		return nil, fmt.Errorf("decode entry: %d bytes: %w", len(b), ErrCorrupt)
	}
	if b[0] != entryVersion {
		return nil, fmt.Errorf("decode entry: version %d: %w", b[0], ErrCorrupt)
	}
	e := &entry{typ: uint32(b[1]) << 12, ino: Ino(binary.BigEndian.Uint64(b[2:10])), name: string(b[10:])}
	if err := checkName(e.name); err != nil {
		return nil, fmt.Errorf("decode entry: bad name: %w", ErrCorrupt)
	}
	return e, nil
}

// checkName refuses names no directory may hold.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return syscall.EINVAL
	case len(name) > MaxNameLen:
		return syscall.ENAMETOOLONG
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return syscall.EINVAL
		}
	}
	return nil
}

// namer turns directory ids and names into on-disk object names with a
// keyed hash, so equal names in different directories look unrelated and
// nothing about a name is visible but that it exists.
type namer struct {
	key []byte
	// hashers holds keyed hashers for reuse: a new one costs an 8 KiB
	// buffer, and every lookup and create hashes twice.
	hashers *sync.Pool
}

func newNamer(key []byte) namer {
	return namer{key: key, hashers: &sync.Pool{New: func() any { return blake3.New(tagSize, key) }}}
}

func (nm namer) sum(domain byte, id Ino, name string) (tag []byte) {
	tag = make([]byte, 0, tagSize)
	// The keyed hasher holds the name key's state: a new one is made
	// inside erase.Do, so that it is zeroed once dropped.
	erase.Do(func() {
		h := nm.hashers.Get().(*blake3.Hasher)
		defer nm.hashers.Put(h)
		h.Reset()
		var b [9]byte
		b[0] = domain
		binary.BigEndian.PutUint64(b[1:], uint64(id))
		h.Write(b[:])
		h.Write([]byte(name))
		tag = h.Sum(tag)
	})
	return tag
}

// dirGroup is the storage group that holds a directory's entries.
func (nm namer) dirGroup(dir Ino) string {
	return "d/" + hex.EncodeToString(nm.sum('d', dir, ""))
}

// entryTag is the keyed hash naming one entry of a directory.
func (nm namer) entryTag(dir Ino, name string) []byte {
	return nm.sum('e', dir, name)
}

func inodeName(ino Ino) string {
	s := fmt.Sprintf("%016x", uint64(ino))
	return "i/" + s[:2] + "/" + s
}

// entryAD binds an entry object to its directory and its name's tag:
// moved to another directory or another name, it no longer opens.
func entryAD(dir Ino, tag []byte) []byte {
	b := append([]byte("rencfs entry"), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(dir))
	return append(b, tag...)
}

// inodeAD binds an inode object to its id.
func inodeAD(ino Ino) []byte {
	b := append([]byte("rencfs inode"), 0)
	return binary.BigEndian.AppendUint64(b, uint64(ino))
}

// chunkAD binds a content chunk to its file and position.
func chunkAD(ino Ino, index uint64) []byte {
	b := append([]byte("rencfs chunk"), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(ino))
	return binary.BigEndian.AppendUint64(b, index)
}
