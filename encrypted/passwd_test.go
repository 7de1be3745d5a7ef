package encrypted

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rencfs/rencfs/encrypted/storage"
)

func TestChangePassword(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
		must[int](t)(fs.Write(f.Ino, []byte("kept across passwords"), 0))
		must[error](t)(nil, fs.Close())
		st := must[*storage.Dir](t)(storage.OpenDir(dir))
		before := countFiles(t, dir)

		newPw := []byte("new password")
		kdf := KDFParams{Time: 2, MemoryKiB: 9 * 1024, Threads: 1}
		wantErr(t, changePassword(st, []byte("not it"), newPw, nil), ErrWrongPassword)
		must[error](t)(nil, changePassword(st, testPassword, newPw, &kdf))

		p := must[*PasswordChange](t)(BeginPasswordChange(st, newPw, Options{}))
		if got := p.KDF(); got != kdf {
			t.Fatalf("kdf %+v, want %+v", got, kdf)
		}
		p.Close()
		must0(t, st.Close())
		_, err := openDir(dir, testPassword)
		wantErr(t, err, ErrWrongPassword)
		fs = must[*FS](t)(openDir(dir, newPw))
		defer fs.Close()
		if got := readAll(t, fs, f.Ino); string(got) != "kept across passwords" {
			t.Fatalf("content %q", got)
		}
		if after := countFiles(t, dir); after != before {
			t.Fatalf("%d files after passwd, %d before: only the header may change", after, before)
		}
	})
}

// failingPut fails the durable header write, as a crash before the rename would.
type failingPut struct{ storage.Storage }

var errInjected = errors.New("injected failure")

func (failingPut) PutDurable(string, []byte) error { return errInjected }

func TestChangePasswordInterrupted(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	fs.Close()
	header := filepath.Join(dir, HeaderName)
	old, err := os.ReadFile(header)
	if err != nil {
		t.Fatal(err)
	}
	st := must[*storage.Dir](t)(storage.OpenDir(dir))
	wantErr(t, changePassword(failingPut{st}, testPassword, []byte("new"), nil), errInjected)
	if now, _ := os.ReadFile(header); !bytes.Equal(now, old) {
		t.Fatal("header changed by a failed passwd")
	}
	must0(t, st.Close())
	must[*FS](t)(openDir(dir, testPassword)).Close()
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// notDurable replaces the header but fails the final folder sync.
type notDurable struct{ storage.Storage }

func (s notDurable) PutDurable(name string, b []byte) error {
	if err := s.Storage.Put(name, b); err != nil {
		return err
	}
	return fmt.Errorf("%w: injected", storage.ErrNotDurable)
}

// TestChangePasswordNotDurable: when only the final sync fails, the
// caller learns that the new password is in force, not a plain failure.
func TestChangePasswordNotDurable(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	st := must[*storage.Dir](t)(storage.OpenDir(dir))
	err := changePassword(notDurable{st}, testPassword, []byte("new"), nil)
	wantErr(t, err, ErrNotDurable)
	must0(t, st.Close())
	must[*FS](t)(openDir(dir, []byte("new"))).Close()
}
