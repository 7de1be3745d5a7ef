package encrypted

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// testKDF keeps unlocking cheap in tests; the cost parameters are stored
// in the header, so they do not change any other behaviour.
var testKDF = KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

var testPassword = []byte("correct horse battery staple")

var ciphers = []Cipher{XChaCha20Poly1305, AES256GCM}

// newTestFS creates a store in a temporary directory.
func newTestFS(t testing.TB, c Cipher, chunkSize int) (*FS, string) {
	t.Helper()
	dir := t.TempDir()
	fs, err := InitDir(dir, testPassword, Options{Cipher: c, ChunkSize: chunkSize, KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	return fs, dir
}

// reopen closes fs and unlocks the same directory again, with no cache.
func reopen(t testing.TB, fs *FS, dir string) *FS {
	t.Helper()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs2, err := OpenDir(dir, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return fs2
}

func forCiphers(t *testing.T, f func(t *testing.T, c Cipher)) {
	for _, c := range ciphers {
		t.Run(c.String(), func(t *testing.T) { f(t, c) })
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// must0 fails the test on an error.
func must0(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func readAll(t testing.TB, fs *FS, ino Ino) []byte {
	t.Helper()
	a, err := fs.GetAttr(ino)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, a.Size+10)
	n, err := fs.Read(ino, buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(n) != a.Size {
		t.Fatalf("read %d bytes, size is %d", n, a.Size)
	}
	return buf[:n]
}

func listNames(t testing.TB, fs *FS, dir Ino) map[string]Dirent {
	t.Helper()
	m := map[string]Dirent{}
	for d, err := range fs.ReadDir(dir) {
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := m[d.Name]; dup {
			t.Fatalf("readdir returned %q twice", d.Name)
		}
		m[d.Name] = d
	}
	return m
}

var _ storage.Storage = (*storage.Dir)(nil)

type storageUsage = storage.Usage

// countChunks counts the chunk files of ino on disk.
func countChunks(t testing.TB, dir string, ino Ino) int {
	t.Helper()
	prefix := fmt.Sprintf("%016x", uint64(ino))
	ents, err := os.ReadDir(filepath.Join(dir, "c", prefix[:2]))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}
