package encrypted

import (
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted/storage"
)

func TestDropKeysAndRekey(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 4096)
		defer fs.Close()
		st := must[*storage.Dir](t)(storage.OpenDir(dir))
		f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
		must[int](t)(fs.Write(f.Ino, []byte("unsaved when idle"), 0)) // still in a stripe

		if fs.DropKeysIfIdle(time.Hour, nil) {
			t.Fatal("dropped keys before the idle time")
		}
		wantErr(t, func() error { fs.DropKeysIfIdle(0, nil); _, err := fs.GetAttr(RootIno); return err }(), ErrKeysGone)
		if fs.KeysLoaded() {
			t.Fatal("keys still loaded")
		}
		// What was unsaved reached the disk before the keys went.
		other := must[*FS](t)(OpenDir(dir, testPassword))
		if got := readAll(t, other, f.Ino); string(got) != "unsaved when idle" {
			t.Fatalf("on disk after drop: %q", got)
		}
		other.Close()

		rekeys := 0
		fs.SetRekey(func() ([]byte, error) {
			rekeys++
			return UnwrapKey(st, testPassword)
		})
		if got := readAll(t, fs, f.Ino); string(got) != "unsaved when idle" {
			t.Fatalf("after rekey: %q", got)
		}
		if rekeys != 1 || !fs.KeysLoaded() {
			t.Fatalf("rekeys %d, loaded %v", rekeys, fs.KeysLoaded())
		}
		must[Attr](t)(fs.Create(RootIno, "g", 0o644, me))
		if rekeys != 1 {
			t.Fatalf("rekeyed %d times for two operations", rekeys)
		}
		if !fs.DropKeysIfIdle(0, func() { rekeys += 100 }) || rekeys != 101 {
			t.Fatalf("drop with callback: rekeys %d", rekeys)
		}
	})
}

// TestSlowRekeyCountsAsUse: idle time counts from the end of a key
// derivation, not from the start of the operation that waited for it, or
// a derivation slower than the idle timeout would be wiped at once.
func TestSlowRekeyCountsAsUse(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	defer fs.Close()
	st := must[*storage.Dir](t)(storage.OpenDir(dir))
	var derived time.Time
	fs.SetRekey(func() ([]byte, error) {
		time.Sleep(50 * time.Millisecond) // a slow Argon2id
		m, err := UnwrapKey(st, testPassword)
		derived = time.Now()
		return m, err
	})
	if !fs.DropKeysIfIdle(0, nil) {
		t.Fatal("keys not dropped")
	}
	must[Attr](t)(fs.GetAttr(RootIno))
	if last := fs.LastUse(); last.Before(derived) {
		t.Fatalf("last use %v is before the key was derived (%v)", last, derived)
	}
}

func TestInitKeyOpenKey(t *testing.T) {
	dir := t.TempDir()
	st := must[*storage.Dir](t)(storage.OpenDir(dir))
	master := must[[]byte](t)(InitKey(st, testPassword, Options{KDF: testKDF}))
	fs := must[*FS](t)(OpenKey(st, master))
	must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
	must[error](t)(nil, fs.Close())
	fs = must[*FS](t)(OpenDir(dir, testPassword))
	defer fs.Close()
	if names := listNames(t, fs, RootIno); len(names) != 1 {
		t.Fatalf("readdir %v", names)
	}
	if _, err := OpenKey(st, make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key accepted")
	}
}
