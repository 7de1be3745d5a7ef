package keyring

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/awnumar/memguard"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
)

// Holder keeps an unlocked store's master key in locked, guarded memory
// (memguard) while the store is in use, wipes it after an idle time, and
// restores it on the next access: from the password in the OS keyring
// (one key derivation), or else by unsealing it from a memguard Enclave,
// where it rests encrypted under a key memguard guards.
type Holder struct {
	fs       *encrypted.FS
	st       storage.Storage
	idle     time.Duration
	log      *slog.Logger
	password func() ([]byte, error) // the keyring's; nil: the enclave
	enclave  *memguard.Enclave
	buf      *memguard.LockedBuffer // the master key while loaded; guarded by the FS's key lock
	stop     chan struct{}
	done     chan struct{}
}

// HolderOptions configure Unlock.
type HolderOptions struct {
	Idle time.Duration // wipe the key after this long without activity; 0: never
	Log  *slog.Logger
}

// Unlock opens the store in st with password and hands its key to a new
// Holder. The caller wipes password.
func Unlock(st storage.Storage, password []byte, opt HolderOptions) (*Holder, error) {
	master, err := encrypted.UnwrapKey(st, password)
	if err != nil {
		return nil, err
	}
	return UnlockKey(st, master, opt)
}

// UnlockKey hands the master key of the store in st (from
// encrypted.InitKey or UnwrapKey) to a new Holder, which wipes the slice.
func UnlockKey(st storage.Storage, master []byte, opt HolderOptions) (*Holder, error) {
	releaseKDFMemory()
	var err error
	h := &Holder{st: st, idle: opt.Idle, log: opt.Log, stop: make(chan struct{}), done: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.buf = memguard.NewBufferFromBytes(master) // wipes master
	h.buf.Melt()                                // the FS wipes it in place when it drops its keys
	sealed := make([]byte, h.buf.Size())
	copy(sealed, h.buf.Bytes())
	h.enclave = memguard.NewEnclave(sealed) // wipes sealed
	if h.fs, err = encrypted.OpenKey(st, h.buf.Bytes()); err != nil {
		h.buf.Destroy()
		return nil, err
	}
	h.fs.SetRekey(h.rekey)
	if h.idle > 0 {
		go h.watch()
	} else {
		close(h.done)
	}
	return h, nil
}

// FS is the unlocked store.
func (h *Holder) FS() *encrypted.FS { return h.fs }

// UseKeyring makes the holder restore the key from the password that
// password returns (the OS keyring's) instead of from its enclave, which
// it then forgets.
func (h *Holder) UseKeyring(password func() ([]byte, error)) {
	h.password = password
	h.enclave = nil
}

// Wiped reports whether the master key is out of memory.
func (h *Holder) Wiped() bool { return !h.fs.KeysLoaded() }

// rekey restores the master key. The FS calls it holding its key lock.
func (h *Holder) rekey() ([]byte, error) {
	var buf *memguard.LockedBuffer
	from := "enclave"
	if h.password != nil {
		from = "keyring"
		pw, err := h.password()
		if err != nil {
			return nil, fmt.Errorf("password from the keyring: %w", err)
		}
		master, err := encrypted.UnwrapKey(h.st, pw)
		Wipe(pw)
		releaseKDFMemory()
		if err != nil {
			return nil, err
		}
		buf = memguard.NewBufferFromBytes(master)
	} else {
		var err error
		if buf, err = h.enclave.Open(); err != nil {
			return nil, fmt.Errorf("unseal key: %w", err)
		}
	}
	buf.Melt()
	h.buf = buf
	h.log.Debug("master key restored", "from", from)
	return buf.Bytes(), nil
}

// releaseKDFMemory returns the key derivation's scratch memory (Argon2id's
// 256 MiB by default, garbage once the key is out) to the OS. Left alone,
// it sets the heap goal at twice its size: the daemon keeps about half a
// GiB resident, and the first half GiB it allocates while serving grows
// into fresh pages, a page fault for each: 62,000 while extracting Go's
// source tree, which then took 1.2–1.4 times as long. It costs one
// garbage collection, once per derivation: at unlock, and when a wiped
// key is derived again from the keyring's password.
func releaseKDFMemory() { debug.FreeOSMemory() }

// watch wipes the key once the store has been idle long enough.
func (h *Holder) watch() {
	defer close(h.done)
	t := time.NewTicker(max(min(h.idle/4, time.Second), 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			if h.fs.DropKeysIfIdle(h.idle, h.free) {
				h.log.Debug("master key wiped after idle", "idle", h.idle.String())
			}
		}
	}
}

// free releases the locked buffer; the FS calls it with the keys dropped.
func (h *Holder) free() {
	if h.buf != nil {
		h.buf.Destroy()
		h.buf = nil
	}
}

// Close syncs and closes the store and destroys the key.
func (h *Holder) Close() error {
	close(h.stop)
	<-h.done
	err := h.fs.Close()
	h.free()
	return err
}
