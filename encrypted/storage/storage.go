// Package storage is the narrow interface through which rencfs reaches the
// disk, and its one backend: a local data directory.
//
// Storage knows nothing about cryptography: it moves opaque byte strings
// under names chosen by the caller. Keeping it this small is what lets an
// object-store backend be added later without touching the crypto.
package storage

import (
	"errors"
	"iter"
)

// Sentinel errors of every backend.
var (
	// ErrNotExist: Get or GetChunk found no such object.
	ErrNotExist = errors.New("object does not exist")
	// ErrBadObject: what stands under an object's name cannot be one: a
	// symlink, a FIFO or device, a directory, or more bytes than the
	// caller's limit. It is damage (or an attack), never read.
	ErrBadObject = errors.New("not a valid object")
	// ErrNotDurable: PutDurable replaced the object, but could not make
	// the replacement durable.
	ErrNotDurable = errors.New("written, but not made durable")
	// ErrLocked: another Storage holds the store open (see LockedError).
	ErrLocked = errors.New("the data dir is in use")
)

// Storage holds metadata objects and content chunks.
//
// A metadata name is a slash-separated path whose components are lowercase
// hex (plus a fixed few names such as the header); its last component is
// the object, the part before it is its group. Put replaces an object
// atomically: a reader sees the old or the new bytes, never a mix. Nothing is
// durable until Sync returns. No Put method keeps a reference to its data
// after it returns: callers reuse the buffer.
//
// A backend serves one open store at a time: opening takes an exclusive
// lock that Close releases, and a second opener gets ErrLocked. Reads are
// bounded by the caller's limit, the largest valid object of that kind.
type Storage interface {
	Get(name string, limit int) ([]byte, error)
	Put(name string, data []byte) error
	// PutNew stores an object that nothing refers to yet, more cheaply
	// than Put: a crash while it runs may leave the object partial. So a
	// caller writes whatever refers to it only after PutNew returns, and a
	// reader never meets a partial object. A name taken already (a
	// leftover of such a crash) is replaced as Put would.
	PutNew(name string, data []byte) error
	// PutDurable replaces an object atomically and durably before it
	// returns: a crash leaves the old or the new object, both on disk.
	PutDurable(name string, data []byte) error
	// Delete removes an object, or an empty group. A missing name is not an error.
	Delete(name string) error
	// List streams the object names (last components) of a group, in no
	// particular order, skipping any name that is not well-formed (a
	// well-formed name that is not a valid object is listed: Get reports it).
	List(group string) iter.Seq2[string, error]

	GetChunk(file, index uint64, limit int) ([]byte, error)
	PutChunk(file, index uint64, data []byte) error
	// PutNewChunk is PutNew for a chunk no inode lists yet.
	PutNewChunk(file, index uint64, data []byte) error
	// DeleteChunk removes one chunk. A missing chunk is not an error.
	DeleteChunk(file, index uint64) error

	// Sync makes every Put, PutChunk and Delete so far durable.
	Sync() error
	// Close releases the store's lock.
	Close() error
}

// Usage is the space of the medium that holds the store, for statfs.
type Usage struct {
	BlockSize                       uint32
	Blocks, BlocksFree, BlocksAvail uint64
	Files, FilesFree                uint64
}

// UsageReporter is implemented by backends that can report free space.
type UsageReporter interface {
	Usage() (Usage, error)
}
