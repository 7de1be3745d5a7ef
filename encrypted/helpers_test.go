package encrypted

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// testKDF keeps unlocking cheap in tests; the cost parameters are stored
// in the header, so they do not change any other behaviour.
var testKDF = KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

var testPassword = []byte("correct horse battery staple")

var ciphers = []Cipher{XChaCha20Poly1305, AES256GCM}

// initDir creates a store in the local directory dir, as mount does.
func initDir(dir string, password []byte, opt Options) (*FS, error) {
	opt = quietWriteBack(opt)
	return inDir(dir, func(st storage.Storage) (*FS, []byte, error) { return Create(st, password, opt) })
}

// openDir unlocks the store in the local directory dir.
func openDir(dir string, password []byte) (*FS, error) {
	return inDir(dir, func(st storage.Storage) (*FS, []byte, error) { return Unlock(st, password, quietWriteBack(Options{})) })
}

// quietWriteBack keeps the write-back out of tests that did not ask for
// it: one that counts writes, or expects a change to be lost in a crash,
// must not meet a tick that fired because the machine was slow.
func quietWriteBack(opt Options) Options {
	if opt.WriteBack == 0 {
		opt.WriteBack = time.Hour
	}
	return opt
}

// inDir opens the storage of dir and the store in it with open, closing
// the storage if that fails, and wipes the store secret.
func inDir(dir string, open func(storage.Storage) (*FS, []byte, error)) (*FS, error) {
	st, err := storage.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	fs, secret, err := open(st)
	clear(secret)
	if err != nil {
		st.Close()
		return nil, err
	}
	return fs, nil
}

// changePassword is BeginPasswordChange and Commit in one.
func changePassword(st storage.Storage, oldPassword, newPassword []byte, kdf *KDFParams) error {
	p, err := BeginPasswordChange(st, oldPassword, Options{})
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Commit(st, newPassword, kdf, KDFParams{})
}

// newTestFS creates a store in a temporary directory.
func newTestFS(t testing.TB, c Cipher, chunkSize int) (*FS, string) {
	t.Helper()
	dir := t.TempDir()
	fs, err := initDir(dir, testPassword, Options{Cipher: c, ChunkSize: chunkSize, KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	return fs, dir
}

// newTestDir creates a store in a temporary directory and closes it.
func newTestDir(t testing.TB, c Cipher, chunkSize int) string {
	t.Helper()
	fs, dir := newTestFS(t, c, chunkSize)
	must0(t, fs.Close())
	return dir
}

// unlockT unlocks the store in st with the test password.
func unlockT(t testing.TB, st storage.Storage) *FS {
	t.Helper()
	fs, secret, err := Unlock(st, testPassword, quietWriteBack(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	clear(secret)
	return fs
}

// crash stops fs as a killed process would: nothing more is stored, the
// keys are gone and the data dir's lock is released.
func crash(fs *FS) {
	fs.abandon()
	fs.st.Close()
}

// reopen closes fs and unlocks the same directory again, with no cache.
func reopen(t testing.TB, fs *FS, dir string) *FS {
	t.Helper()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs2, err := openDir(dir, testPassword)
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
