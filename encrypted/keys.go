package encrypted

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/awnumar/memguard"
)

// The FS owns the master key alone. While loaded it sits in a memguard
// buffer (mlocked, between guard pages); after Options.Idle without an
// operation it is wiped with every key derived from it and every
// plaintext the FS caches, and restored at the next operation: from the
// store secret that Options.Restore returns (the OS keyring's, say), or
// else from a memguard Enclave, where it rests sealed under a key memguard
// guards. Either way the header used is the one authenticated at unlock:
// nothing is read from the data dir again.

// ErrKeysGone: the keys were dropped and no way to get them back was set.
var ErrKeysGone = errors.New("the store's keys were wiped and cannot be restored")

// keyState is the FS's key holder. Guarded by FS.keyMu: operations hold
// it shared (enter/leave), a wipe or restore holds it alone.
type keyState struct {
	buf     *memguard.LockedBuffer // the master key; nil while wiped
	enclave *memguard.Enclave      // the sealed master key, when there is no restore
	restore func() ([]byte, error) // returns the store secret; nil: use the enclave
	names   namer
}

// loaded reports whether the master key is in memory.
func (k *keyState) loaded() bool { return k.buf != nil }

// master is the master key. Callers hold keyMu and have checked loaded.
func (k *keyState) master() []byte { return k.buf.Bytes() }

// install makes buf the master key and derives the name key.
func (fs *FS) install(buf *memguard.LockedBuffer) {
	fs.keys.buf = buf
	fs.keys.names = newNamer(fs.deriveKey(purposeNames, 0))
}

// SetRestore makes a wiped key come back from the store secret that f
// returns (from the OS keyring) instead of from the memguard enclave,
// which is then destroyed. The FS wipes each secret f returns.
func (fs *FS) SetRestore(f func() ([]byte, error)) {
	fs.keyMu.Lock()
	defer fs.keyMu.Unlock()
	fs.keys.restore = f
	fs.keys.enclave = nil
}

// enter starts an operation: it records activity, and restores the keys
// if they were wiped. Operations hold keyMu shared until leave, so a wipe
// waits until none is in progress.
func (fs *FS) enter() error {
	fs.lastUse.Store(time.Now().UnixNano())
	for {
		fs.keyMu.RLock()
		if fs.keys.loaded() {
			return nil
		}
		fs.keyMu.RUnlock()
		if err := fs.restoreKeys(); err != nil {
			return err
		}
	}
}

func (fs *FS) leave() { fs.keyMu.RUnlock() }

// begin starts an operation on inode ino, as nearly every one starts: it
// enters (restoring wiped keys), then pins the node with pick (fs.load,
// or fs.dirNode or fs.regular, which also check its type). Pair with end.
func (fs *FS) begin(ino Ino, pick func(Ino) (*node, error)) (*node, error) {
	if err := fs.enter(); err != nil {
		return nil, err
	}
	n, err := pick(ino)
	if err != nil {
		fs.leave()
		return nil, err
	}
	return n, nil
}

// end finishes an operation begun with begin.
func (fs *FS) end(n *node) {
	fs.unpin(n)
	fs.leave()
}

// restoreKeys brings the master key back after a wipe.
func (fs *FS) restoreKeys() error {
	fs.keyMu.Lock()
	defer fs.keyMu.Unlock()
	if fs.keys.loaded() {
		return nil
	}
	var buf *memguard.LockedBuffer
	var err error
	from := "enclave"
	switch {
	case fs.keys.restore != nil:
		from = "keyring"
		var secret []byte
		if secret, err = fs.keys.restore(); err == nil {
			buf, err = fs.hdr.unwrapSecret(secret)
			clear(secret)
		}
	case fs.keys.enclave != nil:
		buf, err = fs.keys.enclave.Open()
	default:
		return ErrKeysGone
	}
	if err != nil {
		return fmt.Errorf("restore keys from the %s: %w", from, err)
	}
	fs.install(buf)
	// Idle time counts from now: a restore slower than the idle timeout
	// would otherwise see its key wiped before the operation that asked
	// for it could run.
	fs.lastUse.Store(time.Now().UnixNano())
	fs.log.Debug("master key restored", "from", from)
	return nil
}

// lastUsed is when the last operation started.
func (fs *FS) lastUsed() time.Time { return time.Unix(0, fs.lastUse.Load()) }

// keysLoaded reports whether the master key is in memory.
func (fs *FS) keysLoaded() bool {
	fs.keyMu.RLock()
	defer fs.keyMu.RUnlock()
	return fs.keys.loaded()
}

// wipeIfIdle wipes the master key and every key derived from it when no
// operation has started for idle, and none is in progress. Unsaved
// content and inodes are stored first, and cached plaintext forgotten.
// It reports whether it wiped the keys.
func (fs *FS) wipeIfIdle(idle time.Duration) bool {
	fs.keyMu.Lock()
	defer fs.keyMu.Unlock()
	if !fs.keys.loaded() || time.Since(fs.lastUsed()) < idle {
		return false
	}
	if err := fs.flushAll(true); err != nil {
		fs.log.Error("keys kept: unsaved data could not be stored", "err", err)
		return false // keep the keys: the data still needs them
	}
	fs.wipeKeys()
	// What the scrub could not zero (plaintext in buffers already let go:
	// request strings, pooled request buffers) is garbage: collect it and
	// hand the freed pages back to the OS, which zeroes them. Two
	// collections, since a sync.Pool keeps what it held through one. Once
	// per wipe.
	runtime.GC()
	debug.FreeOSMemory()
	return true
}

// OnIdle sets f to run each time the idle watch finds the store idle long
// enough to wipe its keys, just before it does, with no lock held: the
// FUSE layer asks the kernel to drop its caches there (which may write
// back pages, and so delay the wipe), and forgets names it keeps.
func (fs *FS) OnIdle(f func()) { fs.onIdle.Store(&f) }

// watchIdle wipes the keys once the store has been idle for idle; it
// runs a few times per idle period (see background).
func (fs *FS) watchIdle(idle time.Duration) {
	if !fs.keysLoaded() || time.Since(fs.lastUsed()) < idle {
		return
	}
	if f := fs.onIdle.Load(); f != nil {
		(*f)()
	}
	if fs.wipeIfIdle(idle) {
		fs.log.Debug("master key wiped after idle", "idle", idle.String())
	}
}

// wipeKeys destroys the master key and drops every key derived from it.
// Callers hold keyMu for writing.
func (fs *FS) wipeKeys() {
	if fs.keys.buf != nil {
		fs.keys.buf.Destroy()
		fs.keys.buf = nil
	}
	clear(fs.keys.names.key)
	fs.keys.names = namer{}
	fs.scrub()
}

// scrub zeroes and forgets the plaintext every cached node holds: chunk
// slots, inline content, xattrs, link targets, the last name found
// absent; and drops the cipher states, which hold expanded keys (dropping
// is all Go allows for those). A node something still holds (an open
// file) stays, empty: get reads its inode again. Only what is stored is
// scrubbed: a node still holding unsaved changes (a failed sync at Close)
// keeps them. Callers hold keyMu for writing, so no operation runs.
func (fs *FS) scrub() {
	fs.mu.Lock()
	nodes := slices.Collect(maps.Values(fs.nodes))
	fs.mu.Unlock()
	for _, n := range nodes {
		for i := range n.stripes {
			s := &n.stripes[i]
			s.mu.Lock()
			if !s.dirty {
				s.drop()
			}
			s.mu.Unlock()
		}
		n.keyMu.Lock()
		n.aeads = nil
		n.keyMu.Unlock()
		n.mu.Lock()
		if n.in != nil && !n.dirty && n.dirtyChunks == 0 && n.pendDir == nil {
			n.in.scrub()
			n.in = nil
		}
		n.absentName = ""
		n.mu.Unlock()
	}
	fs.mu.Lock()
	for ino, n := range fs.nodes {
		n.mu.Lock()
		if n.in == nil && n.pins == 0 && n.opens == 0 {
			delete(fs.nodes, ino)
		}
		n.mu.Unlock()
	}
	fs.mu.Unlock()
}

// discardLogger is the logger of an FS opened without one.
var discardLogger = slog.New(slog.DiscardHandler)
