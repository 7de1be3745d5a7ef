package encrypted

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

const (
	benchFileSize = 64 << 20
	benchIO       = 128 << 10 // the largest FUSE request
)

func forCiphersB(b *testing.B, f func(b *testing.B, c Cipher)) {
	for _, c := range ciphers {
		b.Run(c.String(), func(b *testing.B) { f(b, c) })
	}
}

// BenchmarkAEAD is the ceiling: raw sealing of one default chunk.
func BenchmarkAEAD(b *testing.B) {
	forCiphersB(b, func(b *testing.B, c Cipher) {
		a, _ := newAEAD(c, make([]byte, 32))
		pt := make([]byte, DefaultChunkSize)
		out := make([]byte, 0, DefaultChunkSize+64)
		b.SetBytes(DefaultChunkSize)
		for b.Loop() {
			out = seal(a, out[:0], pt, chunkAD(1, 2))
		}
	})
}

func writeBenchFile(b *testing.B, fs *FS, name string) Ino {
	f, err := fs.Create(RootIno, name, 0o644, me)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchIO)
	rand.Read(buf)
	for off := 0; off < benchFileSize; off += benchIO {
		if _, err := fs.Write(f.Ino, buf, int64(off)); err != nil {
			b.Fatal(err)
		}
	}
	if err := fs.Flush(f.Ino); err != nil {
		b.Fatal(err)
	}
	return f.Ino
}

func BenchmarkSeqWrite(b *testing.B) {
	forCiphersB(b, func(b *testing.B, c Cipher) {
		fs, _ := newTestFS(b, c, 0)
		defer fs.Close()
		b.SetBytes(benchFileSize)
		i := 0
		for b.Loop() {
			writeBenchFile(b, fs, fmt.Sprint(i))
			i++
		}
	})
}

func BenchmarkSeqRead(b *testing.B) {
	forCiphersB(b, func(b *testing.B, c Cipher) {
		fs, _ := newTestFS(b, c, 0)
		defer fs.Close()
		ino := writeBenchFile(b, fs, "f")
		buf := make([]byte, benchIO)
		b.SetBytes(benchFileSize)
		for b.Loop() {
			for off := 0; off < benchFileSize; off += benchIO {
				if _, err := fs.Read(ino, buf, int64(off)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkRandRead4K(b *testing.B)  { benchRandom4K(b, (*FS).Read) }
func BenchmarkRandWrite4K(b *testing.B) { benchRandom4K(b, (*FS).Write) }

// benchRandom4K does 4 KiB reads or writes at random aligned offsets of
// a 64 MiB file.
func benchRandom4K(b *testing.B, io func(*FS, Ino, []byte, int64) (int, error)) {
	forCiphersB(b, func(b *testing.B, c Cipher) {
		fs, _ := newTestFS(b, c, 0)
		defer fs.Close()
		ino := writeBenchFile(b, fs, "f")
		buf := make([]byte, 4096)
		b.SetBytes(4096)
		for b.Loop() {
			off := mrand.Int64N(benchFileSize/4096) * 4096
			if _, err := io(fs, ino, buf, off); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCreateSmallFiles creates, writes (1 KiB) and closes 10,000
// files per iteration, like unpacking an archive, and syncs once at the end.
func BenchmarkCreateSmallFiles(b *testing.B) {
	forCiphersB(b, func(b *testing.B, c Cipher) {
		fs, _ := newTestFS(b, c, 0)
		defer fs.Close()
		data := make([]byte, 1024)
		const files = 10000
		it := 0
		for b.Loop() {
			d, err := fs.Mkdir(RootIno, fmt.Sprint(it), 0o755, me)
			if err != nil {
				b.Fatal(err)
			}
			it++
			for i := range files {
				f, err := fs.Create(d.Ino, fmt.Sprintf("file%d", i), 0o644, me)
				if err != nil {
					b.Fatal(err)
				}
				fs.Open(f.Ino)
				if _, err := fs.Write(f.Ino, data, 0); err != nil {
					b.Fatal(err)
				}
				if err := fs.Release(f.Ino); err != nil {
					b.Fatal(err)
				}
			}
			if err := fs.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
	})
}

// BenchmarkDeriveKey is one subkey derivation, as every new file needs:
// inside erase.Do each heap allocation is tracked (~0.7 us each).
func BenchmarkDeriveKey(b *testing.B) {
	fs, _ := newTestFS(b, XChaCha20Poly1305, 0)
	defer fs.Close()
	fs.keyMu.Lock()
	defer fs.keyMu.Unlock()
	id := uint64(0)
	for b.Loop() {
		id++
		clear(fs.deriveKey(purposeInode, id))
	}
}
