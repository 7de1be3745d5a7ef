package encrypted

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// ErrKeysGone: the keys were dropped and no way to get them back was set.
var ErrKeysGone = errors.New("the store's keys were wiped and cannot be restored")

// UnwrapKey returns the master key of the store in st. The caller owns
// the slice; OpenKey takes it over.
func UnwrapKey(st storage.Storage, password []byte) ([]byte, error) {
	h, err := readHeader(st)
	if err != nil {
		return nil, err
	}
	return h.unwrap(password)
}

// InitKey is Init for a key holder: it creates the store in st and
// returns its master key (the caller owns it, and may pass it to OpenKey)
// instead of an open FS, so the new store costs one key derivation.
func InitKey(st storage.Storage, password []byte, opt Options) ([]byte, error) {
	fs, err := Init(st, password, opt)
	if err != nil {
		return nil, err
	}
	clear(fs.names.key)
	return fs.master, nil
}

// OpenKey opens the store in st with its master key, which the FS takes
// over: it is wiped by DropKeys and Close. A caller that keeps the key in
// locked memory passes that memory here.
func OpenKey(st storage.Storage, master []byte) (*FS, error) {
	if len(master) != masterKeySize {
		return nil, fmt.Errorf("master key of %d bytes", len(master))
	}
	h, err := readHeader(st)
	if err != nil {
		return nil, err
	}
	return newFS(st, h, master), nil
}

// SetRekey sets how the master key is obtained again after DropKeys: the
// key holder re-derives it from the keyring's password, or unseals it.
// The slice returned is taken over as with OpenKey.
func (fs *FS) SetRekey(f func() ([]byte, error)) {
	fs.keyMu.Lock()
	fs.rekey = f
	fs.keyMu.Unlock()
}

// setMaster installs the master key and the keys derived from it.
// Callers hold keyMu for writing (or own fs alone).
func (fs *FS) setMaster(master []byte) {
	fs.master = master
	fs.names = newNamer(deriveKey(master, purposeNames, 0))
}

// enter starts an operation: it records activity, and restores the keys
// if they were dropped. Operations hold keyMu shared until leave, so
// DropKeys waits until none is in progress.
func (fs *FS) enter() error {
	fs.lastUse.Store(time.Now().UnixNano())
	for {
		fs.keyMu.RLock()
		if fs.master != nil {
			return nil
		}
		fs.keyMu.RUnlock()
		fs.keyMu.Lock()
		if fs.master == nil {
			if fs.rekey == nil {
				fs.keyMu.Unlock()
				return ErrKeysGone
			}
			m, err := fs.rekey()
			if err == nil && len(m) != masterKeySize {
				err = fmt.Errorf("rekey gave %d bytes", len(m))
			}
			if err != nil {
				fs.keyMu.Unlock()
				return fmt.Errorf("restore keys: %w", err)
			}
			fs.setMaster(m)
			// Idle time counts from now: a derivation slower than the
			// idle timeout would otherwise see its key wiped before the
			// operation that asked for it could run, and derive again.
			fs.lastUse.Store(time.Now().UnixNano())
		}
		fs.keyMu.Unlock()
	}
}

func (fs *FS) leave() { fs.keyMu.RUnlock() }

// LastUse is when the last operation started.
func (fs *FS) LastUse() time.Time { return time.Unix(0, fs.lastUse.Load()) }

// KeysLoaded reports whether the master key is in memory.
func (fs *FS) KeysLoaded() bool {
	fs.keyMu.RLock()
	defer fs.keyMu.RUnlock()
	return fs.master != nil
}

// DropKeysIfIdle wipes the master key and every key derived from it when
// no operation has started for idle, and none is in progress. Unsaved
// content and inodes are stored first, and cached plaintext forgotten.
// after runs with the keys gone and operations still held off (the key
// holder frees its locked memory there). It reports whether it dropped
// the keys.
func (fs *FS) DropKeysIfIdle(idle time.Duration, after func()) bool {
	fs.keyMu.Lock()
	defer fs.keyMu.Unlock()
	if fs.master == nil || time.Since(fs.LastUse()) < idle {
		return false
	}
	if err := fs.flushAll(true); err != nil {
		return false // keep the keys: the data still needs them
	}
	fs.dropKeys()
	if after != nil {
		after()
	}
	return true
}

// dropKeys wipes the keys. Callers hold keyMu for writing.
func (fs *FS) dropKeys() {
	clear(fs.master)
	fs.master = nil
	clear(fs.names.key)
	fs.names = namer{}
	fs.mu.Lock()
	nodes := slices.Collect(maps.Values(fs.nodes))
	fs.mu.Unlock()
	// The cipher states hold expanded keys: dropping them is all Go allows.
	for _, n := range nodes {
		n.keyMu.Lock()
		n.aeads = nil
		n.keyMu.Unlock()
	}
}
