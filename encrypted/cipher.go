package encrypted

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/rencfs/rencfs/internal/erase"
)

// Cipher selects the AEAD for content and metadata, chosen at Init.
type Cipher uint8

const (
	// XChaCha20Poly1305 is the default: 192-bit random nonces, fast everywhere.
	XChaCha20Poly1305 Cipher = 1
	// AES256GCM is fastest on CPUs with AES instructions. Its 96-bit random
	// nonces are safe because every key covers one object (see keys.aead).
	AES256GCM Cipher = 2
)

func (c Cipher) String() string {
	switch c {
	case XChaCha20Poly1305:
		return "chacha20poly1305"
	case AES256GCM:
		return "aes256gcm"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// ParseCipher reads the names used on the command line.
func ParseCipher(s string) (Cipher, error) {
	switch s {
	case "chacha20poly1305", "xchacha20poly1305":
		return XChaCha20Poly1305, nil
	case "aes256gcm", "aes-256-gcm":
		return AES256GCM, nil
	}
	return 0, fmt.Errorf("unknown cipher %q (want chacha20poly1305 or aes256gcm)", s)
}

func (c Cipher) valid() bool { return c == XChaCha20Poly1305 || c == AES256GCM }

// newAEAD builds the AEAD of cipher c under a 32-byte key. The cipher's
// key state is allocated inside erase.Do, so it is zeroed once dropped.
func newAEAD(c Cipher, key []byte) (a cipher.AEAD, err error) {
	erase.Do(func() {
		switch c {
		case XChaCha20Poly1305:
			a, err = chacha20poly1305.NewX(key)
		case AES256GCM:
			var b cipher.Block
			if b, err = aes.NewCipher(key); err == nil {
				a, err = cipher.NewGCM(b)
			}
		default:
			err = fmt.Errorf("unknown cipher %d", c)
		}
	})
	return a, err
}

// maxSealOverhead is the most a sealed object adds to its plaintext: an
// XChaCha20-Poly1305 nonce and tag. Reads are bounded with it.
const maxSealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// seal encrypts plaintext under a fresh random nonce and returns
// nonce || ciphertext || tag, appended to dst.
func seal(a cipher.AEAD, dst, plaintext, ad []byte) []byte {
	ns := a.NonceSize()
	// One allocation of the whole object: Seal then appends in place.
	out := slices.Grow(dst, ns+len(plaintext)+a.Overhead())[:len(dst)+ns]
	nonce := out[len(dst):]
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		// crypto/rand does not fail on Linux; continuing would risk nonce reuse.
		panic("rencfs: crypto/rand failed: " + err.Error())
	}
	// The AEAD's assembly leaves plaintext and key stream on the stack.
	erase.Do(func() { out = a.Seal(out, nonce, plaintext, ad) })
	return out
}

// open authenticates and decrypts an object made by seal. Any failure is
// ErrCorrupt: truncation, extension, a flipped bit, or a wrong binding.
// obj stays as it was.
func open(a cipher.AEAD, obj, ad []byte) ([]byte, error) {
	return openInPlace(a, slices.Clone(obj), ad)
}

// openInPlace is open that decrypts into obj's own storage, sparing a
// chunk-sized allocation per chunk read; obj is spent either way.
func openInPlace(a cipher.AEAD, obj, ad []byte) ([]byte, error) {
	ns := a.NonceSize()
	if len(obj) < ns+a.Overhead() {
		return nil, fmt.Errorf("object of %d bytes is too short: %w", len(obj), ErrCorrupt)
	}
	ct := obj[ns:]
	var pt []byte
	var err error
	erase.Do(func() { pt, err = a.Open(ct[:0], obj[:ns], ct, ad) })
	if err != nil {
		return nil, fmt.Errorf("authentication failed: %w", ErrCorrupt)
	}
	return pt, nil
}

// Subkey purposes. Each (purpose, id) pair gets its own key, so that no key
// ever seals more than one object's versions.
const (
	purposeContent = "content"
	purposeInode   = "inode"
	purposeEntry   = "entry"
	purposeNames   = "names"
)

// deriveKey expands the master key into the subkey for (purpose, id).
// The master key is uniformly random, so HKDF-Expand alone is a sound KDF.
// The info also binds the cipher and the chunk size the key was made
// for, so that no key ever serves under a second AEAD or layout, whatever
// a header claims. Callers hold keyMu with the keys loaded.
func (fs *FS) deriveKey(purpose string, id uint64) []byte {
	info := make([]byte, 0, 40)
	info = append(info, "rencfs v1 "...)
	info = append(info, byte(fs.hdr.cipher), fs.hdr.chunkShift)
	info = append(info, purpose...)
	info = binary.BigEndian.AppendUint64(info, id)
	info = append(info, 1)
	key := make([]byte, 0, sha256.Size)
	// HKDF-Expand of one hash block is T(1) = HMAC(PRK, info || 0x01)
	// (RFC 5869): computed so, with half the allocations of hkdf.Expand.
	// HMAC keeps the master key XOR its pads in the heap: allocated
	// inside erase.Do, they are zeroed once freed (each allocation there
	// costs about 0.7 us, so fewer matter: this is once per new file).
	erase.Do(func() {
		m := hmac.New(sha256.New, fs.keys.master())
		m.Write(info)
		key = m.Sum(key)
	})
	return key
}
