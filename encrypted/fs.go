// Package encrypted is the rencfs core: an encrypted POSIX filesystem model
// over a data directory. It knows nothing of FUSE; every operation takes
// inode ids and names and returns errors that wrap syscall.Errno values (or
// ErrCorrupt, which means EIO).
//
// Words used in the code, one per idea:
//   - load and unpin: take and drop a pin on a cached node (load reads its
//     inode first if needed). The storage's Get and Put read and write.
//   - begin and end: start and finish an operation on one inode (enter,
//     load; unpin, leave).
//   - store: seal one object and hand it to the storage now (storeInode,
//     storeEntry, storeChunk, storeInline).
//   - flush: store what memory holds back for an inode (flushData: its
//     content, then its inode; flushName: its pending name; flushNode:
//     both; flushAll: every node).
//   - pending: a name made by Create and not yet stored (pending.go).
//   - attribute queue: inodes changed with no handle open, stored in
//     batches (queueAttr).
//   - idle, wipe, restore: the keys (keys.go); nothing else is "idle".
//
// Lock order (take them in this order, never the reverse):
//
//	keyMu (shared by every operation; alone for a wipe or a restore)
//	  renameMu (rename and rmdir, which lock two directories)
//	    node.dirMu (a directory's entries)
//	      node.content (shared by reads and writes; alone for truncate)
//	        stripe.mu (one chunk slot)
//	          FS.mu (the node cache, the attribute queue)
//	            node.mu (the inode and node state)
//	              node.keyMu (the node's cipher states)
//
// FS.mu and a stripe's mu are never held together.
package encrypted

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// DefaultChunkSize is the plaintext size of a content chunk.
const DefaultChunkSize = 256 << 10

// Options are a store's parameters: the first group is used by Create
// only, and stored in the header; the second by Create and Unlock.
type Options struct {
	Cipher    Cipher    // zero: XChaCha20Poly1305
	ChunkSize int       // zero: DefaultChunkSize; a power of two, 4 KiB..16 MiB
	KDF       KDFParams // zero: DefaultKDF
	UID, GID  uint32    // owner of the root directory

	// KDFLimit is the most a header may ask of Argon2id (zero:
	// DefaultKDFLimit); Create refuses costs above it too.
	KDFLimit KDFParams
	// Idle wipes the keys after this long without an operation; 0: never.
	Idle time.Duration
	// WriteBack bounds how long a change held in memory stays unwritten
	// (zero: DefaultWriteBack).
	WriteBack time.Duration
	Log       *slog.Logger // nil: discard
}

// FS is an unlocked store. Its methods are safe for concurrent use.
type FS struct {
	st  storage.Storage
	hdr *header // as authenticated at unlock: never read again
	cs  uint64  // chunk size
	now func() time.Time
	log *slog.Logger

	// keyMu guards keys: operations hold it shared (enter/leave), and a
	// wipe or restore alone, so keys vanish only between operations.
	keyMu   sync.RWMutex
	keys    keyState
	lastUse atomic.Int64 // UnixNano of the last operation's start

	stop   chan struct{}          // closed to end the background work
	bg     sync.WaitGroup         // the idle watch and the write-back
	onIdle atomic.Pointer[func()] // see OnIdle

	chunkBufs sync.Pool // *[]byte, for sealing chunks

	readAheads sync.WaitGroup // read-ahead goroutines at work, for tests to wait on

	mu    sync.Mutex
	nodes map[Ino]*node
	// attrQueue holds changed nodes with no open handle, pinned: see queueAttr.
	attrQueue []*node

	// renameMu serializes renames, so that the cycle check (walking up
	// from the target directory) sees a tree no other rename is changing.
	renameMu sync.Mutex
}

// maxCachedNodes bounds the decrypted inodes kept in memory.
const maxCachedNodes = 1 << 16

// Cipher is the store's cipher.
func (fs *FS) Cipher() Cipher { return fs.hdr.cipher }

// ChunkSize is the store's content chunk size in bytes.
func (fs *FS) ChunkSize() int { return int(fs.cs) }

// Sync writes back every changed inode and makes all changes durable.
func (fs *FS) Sync() error {
	if err := fs.enter(); err != nil {
		return err
	}
	defer fs.leave()
	if err := fs.flushAll(false); err != nil {
		return err
	}
	return fs.st.Sync()
}

// flushAll stores every node's unsaved content, inode and pending name;
// drop also forgets the plaintext the nodes cache. Contents and inodes go
// first, then the names, each in a random order: the objects of one new
// file are then not written back to back, which would pair its entry (so
// its directory) with its inode and chunks by their times in a snapshot.
func (fs *FS) flushAll(drop bool) error {
	fs.mu.Lock()
	var nodes []*node
	for _, n := range fs.nodes {
		if drop || n.isDirty() {
			n.pins++
			nodes = append(nodes, n)
		}
	}
	queued := fs.attrQueue
	fs.attrQueue = nil
	fs.mu.Unlock()
	first := fs.flushAttrQueue(queued)
	shuffle(nodes)
	for _, n := range nodes {
		if err := fs.flushData(n, false); err != nil && first == nil {
			first = err
		}
	}
	shuffle(nodes)
	for _, n := range nodes {
		if err := fs.flushNode(n, drop); err != nil && first == nil {
			first = err
		}
		fs.unpin(n)
	}
	return first
}

func shuffle(nodes []*node) {
	mrand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
}

// Close stops the idle watch, syncs, wipes the keys and releases the
// storage. The FS must not be used afterwards.
func (fs *FS) Close() error {
	fs.stopBackground()
	var err error
	if fs.keysLoaded() {
		err = fs.Sync()
	} else {
		err = fs.st.Sync() // keys are wiped only with nothing unsaved
	}
	fs.keyMu.Lock()
	fs.wipeKeys()
	fs.keys.restore, fs.keys.enclave = nil, nil
	fs.keyMu.Unlock()
	return errors.Join(err, fs.st.Close())
}

// node is the in-memory state of one inode.
type node struct {
	ino Ino

	mu      sync.Mutex // guards the fields below
	in      *inode
	dirty   bool // in differs from the object on disk
	pins    int  // operations in progress holding this node
	opens   int  // open file handles
	removed bool // inode object deleted: the file is gone
	stored  bool // the inode object exists: false for a new node until written

	dirtyChunks int    // stripes holding unsaved content
	storedSize  uint64 // the size the stored content backs (see storeInode)

	readNext atomic.Uint64 // the chunk after the one Read last entered: see readAhead

	// A file Create keeps in memory (see pending.go) knows its directory
	// and name; the directory knows its pending files by name.
	pendDir  *node
	pendName string
	pending  map[string]*node

	// A directory's last name Lookup found absent, and its count of entry
	// writes then (see absent).
	absentName  string
	absentAt    uint64
	entryWrites atomic.Uint64

	keyMu sync.Mutex // guards aeads; separate so it can be taken with or without mu
	aeads map[string]cipher.AEAD

	dirMu   sync.Mutex   // serializes changes to this directory's entries
	content sync.RWMutex // reads and writes share it; truncate takes it alone
	stripes [nStripes]stripe
}

func (n *node) isDirty() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dirty || n.dirtyChunks > 0
}

// aead returns the node's AEAD for a purpose, deriving it once.
func (fs *FS) aead(n *node, purpose string) cipher.AEAD {
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	if a := n.aeads[purpose]; a != nil {
		return a
	}
	key := fs.deriveKey(purpose, uint64(n.ino))
	defer clear(key)
	a, err := newAEAD(fs.hdr.cipher, key)
	if err != nil {
		panic("rencfs: " + err.Error()) // only for a bad key length, which deriveKey rules out
	}
	if n.aeads == nil {
		n.aeads = map[string]cipher.AEAD{}
	}
	n.aeads[purpose] = a
	return a
}

// load pins the node for ino, reading its inode if needed. Pair with unpin.
func (fs *FS) load(ino Ino) (*node, error) {
	fs.mu.Lock()
	if n := fs.nodes[ino]; n != nil {
		n.pins++
		fs.mu.Unlock()
		if err := fs.reload(n); err != nil {
			fs.unpin(n)
			return nil, err
		}
		return n, nil
	}
	fs.mu.Unlock()

	n := &node{ino: ino, stored: true}
	var err error
	if n.in, err = fs.readInode(n); err != nil {
		return nil, err
	}
	n.storedSize = n.in.size

	fs.mu.Lock()
	defer fs.mu.Unlock()
	if m := fs.nodes[ino]; m != nil { // loaded meanwhile by another goroutine
		m.pins++
		return m, nil
	}
	n.pins = 1
	fs.nodes[ino] = n
	return n, nil
}

// readInode reads and opens n's inode object.
func (fs *FS) readInode(n *node) (*inode, error) {
	b, err := fs.getObject(inodeName(n.ino), maxInodeObject)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("inode %016x: %w", uint64(n.ino), syscall.ENOENT)
	}
	if err != nil {
		return nil, fmt.Errorf("read inode %016x: %w", uint64(n.ino), err)
	}
	pt, err := openInPlace(fs.aead(n, purposeInode), b, inodeAD(n.ino))
	if err != nil {
		return nil, fmt.Errorf("inode %016x: %w", uint64(n.ino), err)
	}
	in, err := decodeInode(pt)
	clear(pt) // decode copied what it keeps
	if err != nil {
		return nil, fmt.Errorf("inode %016x: %w", uint64(n.ino), err)
	}
	return in, nil
}

// reload reads the inode of a node the key wipe emptied (see scrub), if
// it is one. Callers hold n pinned.
func (fs *FS) reload(n *node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.in != nil {
		return nil
	}
	in, err := fs.readInode(n)
	if err != nil {
		return err
	}
	n.in, n.storedSize = in, in.size
	return nil
}

// pin adds a pin to a node the caller already holds pinned, or knows cached.
func (fs *FS) pin(n *node) {
	fs.mu.Lock()
	n.pins++
	fs.mu.Unlock()
}

// unpin drops a pin, and the node itself once the cache is full and it
// holds nothing unsaved and no handle.
func (fs *FS) unpin(n *node) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n.pins--
	if len(fs.nodes) <= maxCachedNodes || n.pins > 0 {
		return
	}
	n.mu.Lock()
	idle := n.opens == 0 && !n.dirty && n.dirtyChunks == 0 && n.pendDir == nil
	n.mu.Unlock()
	if idle && fs.nodes[n.ino] == n {
		delete(fs.nodes, n.ino)
	}
}

// storeInode seals and stores n's inode now. Callers hold n.mu, or own n alone.
//
// An inode is never stored with a size that covers content not stored
// yet: while n has unsaved chunks (a rename, a link or an unlink stores
// it meanwhile), it is stored with the size its stored content backs,
// and stays dirty, so that the flush that stores those chunks stores the
// whole size after them. A crash in between then shows the file as it
// was, not zeros where the unsaved bytes were.
func (fs *FS) storeInode(n *node) error {
	n.in.generation++
	size, partial := n.in.size, n.dirtyChunks > 0 && n.storedSize < n.in.size
	if partial {
		n.in.size = n.storedSize
	}
	pt := n.in.encode() // inline content, xattrs, a link target
	n.in.size = size
	defer clear(pt)
	if len(pt) > maxInodePlain {
		return fmt.Errorf("inode %016x would take %d bytes: %w", uint64(n.ino), len(pt), syscall.EFBIG)
	}
	obj := seal(fs.aead(n, purposeInode), nil, pt, inodeAD(n.ino))
	put := fs.st.Put
	if !n.stored {
		put = fs.st.PutNew // its entry is written only once it is whole
	}
	if err := put(inodeName(n.ino), obj); err != nil {
		return fmt.Errorf("write inode %016x: %w", uint64(n.ino), err)
	}
	n.stored, n.dirty = true, partial
	if !partial && n.dirtyChunks == 0 {
		n.storedSize = size
	}
	return nil
}

// flushData stores n's unsaved content, then its inode if it changed
// (in this order, so that the inode never lists a chunk not yet stored);
// drop also forgets the plaintext n caches.
func (fs *FS) flushData(n *node, drop bool) error {
	n.content.RLock()
	err := fs.flushChunks(n, drop)
	n.content.RUnlock()
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dirty || n.removed {
		return nil
	}
	return fs.storeInode(n)
}

// flushNode stores whatever n holds in memory: its name if pending (see
// pending.go), else its unsaved content and inode.
func (fs *FS) flushNode(n *node, drop bool) error {
	if err := fs.flushName(n); err != nil {
		return err
	}
	return fs.flushData(n, drop)
}

// getObject reads a metadata object of at most limit bytes.
func (fs *FS) getObject(name string, limit int) ([]byte, error) {
	b, err := fs.st.Get(name, limit)
	return b, badIsCorrupt(err)
}

// badIsCorrupt reports what the storage refused to read as an object (a
// symlink, a FIFO, an oversized file) as damage to that object.
func badIsCorrupt(err error) error {
	if errors.Is(err, storage.ErrBadObject) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// newIno picks a random unused inode id.
func (fs *FS) newIno() (Ino, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		ino := Ino(binary.BigEndian.Uint64(b[:]))
		if ino <= RootIno {
			continue
		}
		fs.mu.Lock()
		_, cached := fs.nodes[ino]
		fs.mu.Unlock()
		if cached {
			continue
		}
		if _, err := fs.st.Get(inodeName(ino), maxInodeObject); errors.Is(err, storage.ErrNotExist) {
			return ino, nil
		} else if err != nil {
			return 0, err
		}
	}
}

// removeNode deletes an inode and its content from disk. Callers hold n.mu.
func (fs *FS) removeNode(n *node) error {
	n.removed = true
	n.dirty = false
	fs.mu.Lock()
	if fs.nodes[n.ino] == n {
		delete(fs.nodes, n.ino)
	}
	fs.mu.Unlock()
	// Inode first: chunks without an inode are unreachable garbage, while an
	// inode without its chunks would read as corrupt.
	if err := fs.st.Delete(inodeName(n.ino)); err != nil {
		return fmt.Errorf("delete inode %016x: %w", uint64(n.ino), err)
	}
	return fs.deleteChunks(n.ino, n.in.extents, 0)
}

// deleteChunks removes the chunks listed in x from index from on.
func (fs *FS) deleteChunks(ino Ino, x extents, from uint64) error {
	for _, e := range x {
		for idx := max(e.start, from); idx < e.end; idx++ {
			if err := fs.st.DeleteChunk(uint64(ino), idx); err != nil {
				return fmt.Errorf("delete chunk %d of %016x: %w", idx, uint64(ino), err)
			}
		}
	}
	return nil
}

// Usage reports the store's capacity, from the medium under it.
func (fs *FS) Usage() (storage.Usage, error) {
	if u, ok := fs.st.(storage.UsageReporter); ok {
		return u.Usage()
	}
	return storage.Usage{BlockSize: 4096}, nil
}

// Fresh reports whether dir can take a new store: it is missing, or holds
// nothing but hidden files (a sync client's, say).
func Fresh(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("data dir: %w", err)
	}
	for _, e := range ents {
		if e.Name()[0] != '.' {
			return false, nil
		}
	}
	return true, nil
}
