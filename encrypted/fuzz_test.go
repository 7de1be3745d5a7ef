package encrypted

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"time"
)

func FuzzHeader(f *testing.F) {
	h := &header{version: FormatVersion, cipher: XChaCha20Poly1305, chunkShift: 18, kdf: testKDF}
	secret, err := h.wrap(testPassword, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	secret.Destroy()
	f.Add(h.encode())
	f.Add([]byte("rencfs\x00\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			var ve *VersionError
			if !errors.Is(err, ErrCorrupt) && !errors.As(err, &ve) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !bytes.Equal(h.encode(), b) {
			t.Fatal("accepted header does not re-encode to itself")
		}
	})
}

func FuzzInode(f *testing.F) {
	in := &inode{
		mode: syscall.S_IFREG | 0o644, uid: 1, gid: 2, nlink: 1, size: 12345,
		atime: time.Unix(1, 2), mtime: time.Unix(3, 4), ctime: time.Unix(5, 6),
		target: []byte("t"), extents: extents{{0, 3}, {5, 9}},
		xattrs: map[string][]byte{"user.a": []byte("x"), "user.b": nil},
		links:  []link{{dir: 9, tag: [tagSize]byte{1, 2}}},
	}
	f.Add(in.encode())
	f.Add((&inode{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeInode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		enc := in.encode()
		again, err := decodeInode(enc)
		if err != nil || !bytes.Equal(again.encode(), enc) {
			t.Fatalf("re-encoded inode does not round-trip: %v", err)
		}
	})
}

func FuzzEntry(f *testing.F) {
	f.Add((&entry{name: "hello", ino: 42, typ: syscall.S_IFREG}).encode())
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0, 1, '.'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !bytes.Equal(e.encode(), b) {
			t.Fatal("accepted entry does not re-encode to itself")
		}
	})
}

// FuzzChunk feeds arbitrary bytes to the chunk reader as chunk 0 of a
// file: the result is ErrCorrupt or, for the genuine chunk, its plaintext.
func FuzzChunk(f *testing.F) {
	for _, c := range ciphers {
		key := bytes.Repeat([]byte{7}, 32)
		a, err := newAEAD(c, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(c), seal(a, nil, []byte("plaintext"), chunkAD(5, 0)))
	}
	f.Add(uint8(1), []byte{})
	f.Fuzz(func(t *testing.T, c uint8, obj []byte) {
		cipher := Cipher(c%2 + 1)
		a, _ := newAEAD(cipher, bytes.Repeat([]byte{7}, 32))
		pt, err := open(a, obj, chunkAD(5, 0))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if string(pt) != "plaintext" {
			t.Fatalf("forged chunk opened: %q", pt)
		}
	})
}
