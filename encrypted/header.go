package encrypted

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/awnumar/memguard"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"

	"github.com/rencfs/rencfs/internal/erase"
)

// FormatVersion is the data-dir format this package reads and writes.
const FormatVersion uint16 = 1

// HeaderName is the header's name in the data directory.
const HeaderName = "rencfs.header"

var headerMagic = []byte("rencfs")

const (
	kdfArgon2id   = 1
	saltSize      = 32
	masterKeySize = 32
	wrapNonceSize = chacha20poly1305.NonceSizeX
	wrappedSize   = wrapNonceSize + masterKeySize + chacha20poly1305.Overhead
	// magic(6) version(2) cipher(1) chunkShift(1) kdf(1) time(4) memory(4) threads(1) salt(32)
	headerParamsSize = 6 + 2 + 1 + 1 + 1 + 4 + 4 + 1 + saltSize
	checksumSize     = 32
	headerSize       = headerParamsSize + wrappedSize + checksumSize

	minChunkShift = 12 // 4 KiB
	maxChunkShift = 24 // 16 MiB
)

// KDFParams are the Argon2id costs. They are public and stored in the header.
type KDFParams struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF costs about 0.4–0.8 s and 256 MiB on a 2-core machine.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 256 * 1024, Threads: 4}

// DefaultKDFLimit is the most a header may ask of the KDF before Unlock
// refuses to run it: the header is read before anything authenticates
// it, so its costs are an attacker's to choose. Beyond this a tampered
// header would stall an unlock for minutes or exhaust memory. Callers
// lift it (Options.KDFLimit) only for costs the user chose.
var DefaultKDFLimit = KDFParams{Time: 10, MemoryKiB: 1 << 20, Threads: 16}

// FormatKDFMax is the most the format allows (docs/format.md): the
// limit for a user who vouches for a costlier header.
var FormatKDFMax = KDFParams{Time: 64, MemoryKiB: 4 << 20, Threads: 255}

// MinKDFMemoryKiB is the least Argon2id memory a store may use (8 MiB).
const MinKDFMemoryKiB = 8 * 1024

// ErrKDFLimit: a header (or a request) asks for more KDF work than allowed.
var ErrKDFLimit = errors.New("key derivation costs above the limit")

// validate checks p against the format's ranges.
func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > FormatKDFMax.Time {
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, FormatKDFMax.Time)
	}
	if p.MemoryKiB < MinKDFMemoryKiB || p.MemoryKiB > FormatKDFMax.MemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB out of range 8 MiB..4 GiB", p.MemoryKiB)
	}
	if p.Threads < 1 {
		return fmt.Errorf("argon2id threads must be at least 1")
	}
	return nil
}

// within reports ErrKDFLimit when p asks for more than limit in any cost.
func (p KDFParams) within(limit KDFParams) error {
	if p.Time > limit.Time || p.MemoryKiB > limit.MemoryKiB || p.Threads > limit.Threads {
		return fmt.Errorf("%w: argon2id t=%d m=%d MiB p=%d exceeds t=%d m=%d MiB p=%d",
			ErrKDFLimit, p.Time, p.MemoryKiB>>10, p.Threads, limit.Time, limit.MemoryKiB>>10, limit.Threads)
	}
	return nil
}

// derive runs Argon2id, then hands its scratch memory (256 MiB by
// default, garbage once the key is out) back to the OS. Left alone it
// sets the heap goal at twice its size: the process keeps about half a
// GiB resident, and the first half GiB it allocates grows into fresh
// pages, a page fault each: 62,000 while extracting Go's source tree
// through a mount, which then took 1.2–1.4 times as long. The memory was
// derived from the password, which is one more reason not to leave it.
func (p KDFParams) derive(password, salt []byte) (k []byte) {
	erase.Do(func() { k = argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, 32) })
	debug.FreeOSMemory()
	return k
}

// header is the decoded header file.
type header struct {
	version    uint16
	cipher     Cipher
	chunkShift uint8
	kdf        KDFParams
	salt       []byte
	wrapped    []byte // nonce || sealed master key
}

func (h *header) chunkSize() int { return 1 << h.chunkShift }

// params encodes everything before the wrapped key: the public parameters,
// which are also the wrap's associated data, so none can be changed unnoticed.
func (h *header) params() []byte {
	b := make([]byte, 0, headerParamsSize)
	b = append(b, headerMagic...)
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = append(b, byte(h.cipher), h.chunkShift, kdfArgon2id)
	b = binary.BigEndian.AppendUint32(b, h.kdf.Time)
	b = binary.BigEndian.AppendUint32(b, h.kdf.MemoryKiB)
	b = append(b, h.kdf.Threads)
	return append(b, h.salt...)
}

func (h *header) encode() []byte {
	b := append(h.params(), h.wrapped...)
	sum := blake3.Sum256(b)
	return append(b, sum[:]...)
}

// decodeHeader parses and checks a header. A newer version is reported as
// *VersionError before anything else is looked at, since a newer layout may
// differ beyond it.
func decodeHeader(b []byte) (*header, error) {
	if len(b) < 8 || !bytes.Equal(b[:6], headerMagic) {
		return nil, fmt.Errorf("header: bad magic: %w", ErrCorrupt)
	}
	h := &header{version: binary.BigEndian.Uint16(b[6:8])}
	if h.version > FormatVersion {
		return nil, &VersionError{Found: h.version, Supported: FormatVersion}
	}
	if h.version != FormatVersion {
		return nil, fmt.Errorf("header: version %d: %w", h.version, ErrCorrupt)
	}
	if len(b) != headerSize {
		return nil, fmt.Errorf("header: %d bytes, want %d: %w", len(b), headerSize, ErrCorrupt)
	}
	sum := blake3.Sum256(b[:headerSize-checksumSize])
	if subtle.ConstantTimeCompare(sum[:], b[headerSize-checksumSize:]) != 1 {
		return nil, fmt.Errorf("header: checksum mismatch: %w", ErrCorrupt)
	}
	h.cipher = Cipher(b[8])
	h.chunkShift = b[9]
	kdf := b[10]
	h.kdf.Time = binary.BigEndian.Uint32(b[11:15])
	h.kdf.MemoryKiB = binary.BigEndian.Uint32(b[15:19])
	h.kdf.Threads = b[19]
	h.salt = append([]byte(nil), b[20:20+saltSize]...)
	h.wrapped = append([]byte(nil), b[headerParamsSize:headerParamsSize+wrappedSize]...)
	switch {
	case !h.cipher.valid():
		return nil, fmt.Errorf("header: unknown cipher %d: %w", b[8], ErrCorrupt)
	case h.chunkShift < minChunkShift || h.chunkShift > maxChunkShift:
		return nil, fmt.Errorf("header: chunk size 2^%d out of range: %w", h.chunkShift, ErrCorrupt)
	case kdf != kdfArgon2id:
		return nil, fmt.Errorf("header: unknown kdf %d: %w", kdf, ErrCorrupt)
	}
	if err := h.kdf.validate(); err != nil {
		return nil, fmt.Errorf("header: %v: %w", err, ErrCorrupt)
	}
	return h, nil
}

// secretSize is the size of a store secret: the key-encryption key.
const secretSize = 32

// wrap seals the master key under a key derived from password, with a
// fresh salt, and returns that key, the store secret (see unwrap). Every
// call picks a new salt, so a new password never shares a key-encryption
// key with an old one, and the store secret of the old password dies
// with it.
func (h *header) wrap(password, master []byte) (secret *memguard.LockedBuffer, err error) {
	h.salt = make([]byte, saltSize)
	if _, err := io.ReadFull(rand.Reader, h.salt); err != nil {
		return nil, err
	}
	secret = memguard.NewBufferFromBytes(h.kdf.derive(password, h.salt)) // wipes the source
	a, err := newAEAD(XChaCha20Poly1305, secret.Bytes())
	if err != nil {
		secret.Destroy()
		return nil, err
	}
	h.wrapped = seal(a, nil, master, h.params())
	return secret, nil
}

// unwrap derives the key-encryption key from password and opens the
// master key with it: ErrWrongPassword if it does not open. It returns
// both in locked memory; the key-encryption key is the store secret,
// which opens this header (see unwrapSecret) without a derivation.
func (h *header) unwrap(password []byte) (master, secret *memguard.LockedBuffer, err error) {
	secret = memguard.NewBufferFromBytes(h.kdf.derive(password, h.salt)) // wipes the source
	master, err = h.unwrapSecret(secret.Bytes())
	if err != nil {
		secret.Destroy()
		return nil, nil, err
	}
	return master, secret, nil
}

// unwrapSecret opens the master key with a store secret: ErrWrongPassword
// if it is not this header's.
func (h *header) unwrapSecret(secret []byte) (*memguard.LockedBuffer, error) {
	if len(secret) != secretSize {
		return nil, ErrWrongPassword
	}
	a, err := newAEAD(XChaCha20Poly1305, secret)
	if err != nil {
		return nil, err
	}
	master, err := open(a, h.wrapped, h.params())
	if err != nil || len(master) != masterKeySize {
		clear(master)
		return nil, ErrWrongPassword
	}
	return memguard.NewBufferFromBytes(master), nil // wipes the source
}
