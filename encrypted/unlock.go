package encrypted

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/awnumar/memguard"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// A store is opened by one route, new or existing: the header is decoded
// once, the master key unwrapped with it, and the FS runs with exactly
// that header's parameters (newFS). Unlock and Create also return the
// store secret: the key-encryption key of the current header, which
// opens this store (UnlockSecret) without a key derivation and dies
// with the next password change. It is what the OS keyring keeps while
// mounted, instead of the password.

// Create makes a new store in st, which must hold none yet, and returns
// it unlocked with its secret (the caller wipes it).
func Create(st storage.Storage, password []byte, opt Options) (*FS, []byte, error) {
	if _, err := st.Get(HeaderName, headerSize); err == nil {
		return nil, nil, fmt.Errorf("create: %w", ErrNotEmpty)
	} else if !errors.Is(err, storage.ErrNotExist) {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	h, err := newHeader(opt)
	if err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	master := memguard.NewBuffer(masterKeySize)
	if _, err := rand.Read(master.Bytes()); err != nil {
		master.Destroy()
		return nil, nil, err
	}
	secret, err := h.wrap(password, master.Bytes())
	if err != nil {
		master.Destroy()
		return nil, nil, fmt.Errorf("create: wrap key: %w", err)
	}
	defer secret.Destroy()
	fs := newFS(st, h, master, opt)
	now := fs.now()
	root := &node{ino: RootIno, in: &inode{
		mode: syscall.S_IFDIR | 0o755, uid: opt.UID, gid: opt.GID, nlink: 2,
		atime: now, mtime: now, ctime: now, parent: RootIno,
	}}
	err = fs.storeInode(root)
	// The header goes last: a data dir with a header is a complete store.
	if err == nil {
		err = st.Put(HeaderName, h.encode())
	}
	if err == nil {
		err = st.Sync()
	}
	if err != nil {
		fs.abandon()
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	return fs, slices.Clone(secret.Bytes()), nil
}

// newHeader checks a new store's options and builds its header, without
// the wrapped key.
func newHeader(opt Options) (*header, error) {
	if opt.Cipher == 0 {
		opt.Cipher = XChaCha20Poly1305
	}
	if !opt.Cipher.valid() {
		return nil, fmt.Errorf("unknown cipher %d", opt.Cipher)
	}
	if opt.ChunkSize == 0 {
		opt.ChunkSize = DefaultChunkSize
	}
	shift := uint8(0)
	for 1<<shift < opt.ChunkSize {
		shift++
	}
	if 1<<shift != opt.ChunkSize || shift < minChunkShift || shift > maxChunkShift {
		return nil, fmt.Errorf("chunk size %d is not a power of two between 4 KiB and 16 MiB", opt.ChunkSize)
	}
	if opt.KDF == (KDFParams{}) {
		opt.KDF = DefaultKDF
	}
	if err := opt.KDF.validate(); err != nil {
		return nil, err
	}
	if err := opt.KDF.within(opt.kdfLimit()); err != nil {
		return nil, err
	}
	return &header{version: FormatVersion, cipher: opt.Cipher, chunkShift: shift, kdf: opt.KDF}, nil
}

func (opt Options) kdfLimit() KDFParams {
	if opt.KDFLimit == (KDFParams{}) {
		return DefaultKDFLimit
	}
	return opt.KDFLimit
}

// Unlock opens the store in st with password, and returns it with its
// secret (the caller wipes it).
func Unlock(st storage.Storage, password []byte, opt Options) (*FS, []byte, error) {
	h, err := readHeader(st, opt)
	if err != nil {
		return nil, nil, err
	}
	master, secret, err := h.unwrap(password)
	if err != nil {
		return nil, nil, err
	}
	defer secret.Destroy()
	return newFS(st, h, master, opt), slices.Clone(secret.Bytes()), nil
}

// UnlockSecret opens the store in st with a secret that Unlock or Create
// returned: ErrWrongPassword if it does not open this header (the
// password changed since).
func UnlockSecret(st storage.Storage, secret []byte, opt Options) (*FS, error) {
	h, err := readHeader(st, opt)
	if err != nil {
		return nil, err
	}
	master, err := h.unwrapSecret(secret)
	if err != nil {
		return nil, err
	}
	return newFS(st, h, master, opt), nil
}

// readHeader reads and decodes the header, and refuses KDF costs above
// the limit before anything derives with them.
func readHeader(st storage.Storage, opt Options) (*header, error) {
	b, err := st.Get(HeaderName, headerSize)
	if errors.Is(err, storage.ErrNotExist) {
		return nil, ErrNotStore
	}
	if errors.Is(err, storage.ErrBadObject) {
		return nil, fmt.Errorf("read header: %v: %w", err, ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	if err := h.kdf.within(opt.kdfLimit()); err != nil {
		return nil, fmt.Errorf("header: %w (pass a higher limit only if you chose these costs)", err)
	}
	return h, nil
}

// newFS runs the store of header h with master, which it takes over.
func newFS(st storage.Storage, h *header, master *memguard.LockedBuffer, opt Options) *FS {
	fs := &FS{st: st, hdr: h, cs: uint64(h.chunkSize()), now: time.Now, log: opt.Log, nodes: map[Ino]*node{}}
	if fs.log == nil {
		fs.log = discardLogger
	}
	fs.install(master)
	fs.lastUse.Store(time.Now().UnixNano())
	fs.stop = make(chan struct{})
	if opt.Idle > 0 {
		// Until SetRestore names a better source, a wiped key comes back
		// from a sealed copy.
		c := memguard.NewBuffer(masterKeySize)
		c.Copy(master.Bytes())
		fs.keys.enclave = c.Seal()
		fs.background(max(min(opt.Idle/4, time.Second), 10*time.Millisecond), func() { fs.watchIdle(opt.Idle) })
	}
	every := opt.WriteBack
	if every <= 0 {
		every = DefaultWriteBack
	}
	fs.background(max(every/2, time.Millisecond), fs.writeBack)
	return fs
}

// stopBackground ends the idle watch and the write-back, once.
func (fs *FS) stopBackground() {
	select {
	case <-fs.stop:
	default:
		close(fs.stop)
	}
	fs.bg.Wait()
}

// abandon wipes the keys of an FS that failed to come up.
func (fs *FS) abandon() {
	fs.stopBackground()
	fs.keyMu.Lock()
	fs.wipeKeys()
	fs.keys.enclave = nil
	fs.keyMu.Unlock()
}
