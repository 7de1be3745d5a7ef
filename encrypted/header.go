package encrypted

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/awnumar/memguard"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3"
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

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > 64 {
		return fmt.Errorf("argon2id time %d out of range 1..64", p.Time)
	}
	if p.MemoryKiB < 8*1024 || p.MemoryKiB > 4*1024*1024 {
		return fmt.Errorf("argon2id memory %d KiB out of range 8 MiB..4 GiB", p.MemoryKiB)
	}
	if p.Threads < 1 {
		return fmt.Errorf("argon2id threads must be at least 1")
	}
	return nil
}

func (p KDFParams) derive(password, salt []byte) []byte {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, 32)
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

// wrap seals the master key under a key derived from password, with a
// fresh salt. Every call picks a new salt, so a new password never shares a
// key-encryption key with an old one.
func (h *header) wrap(password, master []byte) error {
	h.salt = make([]byte, saltSize)
	if _, err := io.ReadFull(rand.Reader, h.salt); err != nil {
		return err
	}
	a, err := h.kek(password)
	if err != nil {
		return err
	}
	h.wrapped = seal(a, nil, master, h.params())
	return nil
}

// kek derives the key-encryption key from password. It lives in locked,
// guarded memory until the AEAD is keyed, then is wiped.
func (h *header) kek(password []byte) (cipher.AEAD, error) {
	kek := memguard.NewBufferFromBytes(h.kdf.derive(password, h.salt)) // wipes the source
	defer kek.Destroy()
	return chacha20poly1305.NewX(kek.Bytes())
}

// unwrap recovers the master key, or returns ErrWrongPassword.
func (h *header) unwrap(password []byte) ([]byte, error) {
	a, err := h.kek(password)
	if err != nil {
		return nil, err
	}
	master, err := open(a, h.wrapped, h.params())
	if err != nil {
		return nil, ErrWrongPassword
	}
	return master, nil
}
