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

// ErrNotExist is returned by Get and GetChunk for a missing object.
var ErrNotExist = errors.New("object does not exist")

// Storage holds metadata objects and content chunks.
//
// A metadata name is a slash-separated path whose components are lowercase
// hex (plus a fixed few names such as the header); its last component is
// the object, the part before it is its group. Put replaces an object
// atomically: a reader sees the old or the new bytes, never a mix. Nothing is
// durable until Sync returns. No Put method keeps a reference to its data
// after it returns: callers reuse the buffer.
type Storage interface {
	Get(name string) ([]byte, error)
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
	// particular order, skipping anything that is not a well-formed name.
	List(group string) iter.Seq2[string, error]

	GetChunk(file, index uint64) ([]byte, error)
	PutChunk(file, index uint64, data []byte) error
	// PutNewChunk is PutNew for a chunk no inode lists yet.
	PutNewChunk(file, index uint64, data []byte) error
	// DeleteChunk removes one chunk. A missing chunk is not an error.
	DeleteChunk(file, index uint64) error

	// Sync makes every Put, PutChunk and Delete so far durable.
	Sync() error
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
