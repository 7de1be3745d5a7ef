package encrypted

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// TestWriteBackBound: changes held in memory (an attribute change of a
// file no handle holds, an xattr, a file created and written but never
// closed, a partial chunk of an open file) are stored within the
// write-back period, so a crash after it loses none of them.
func TestWriteBackBound(t *testing.T) {
	dir := t.TempDir()
	fs, err := initDir(dir, testPassword, Options{KDF: testKDF, ChunkSize: 4096, WriteBack: 100 * time.Millisecond})
	must0(t, err)
	f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
	must0(t, fs.Release(f.Ino))
	mode, uid := uint32(0o600), uint32(4242)
	when := time.Unix(1234567890, 5)
	must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Mode: &mode, UID: &uid, Mtime: &when})) // queued
	must0(t, fs.SetXattr(f.Ino, "user.k", []byte("v"), 0))
	open := must[Attr](t)(fs.Create(RootIno, "open", 0o644, me)) // pending, never closed
	must[int](t)(fs.Write(open.Ino, bytes.Repeat([]byte("p"), 5000), 0))

	time.Sleep(400 * time.Millisecond) // four periods
	crash(fs)

	fs = must[*FS](t)(openDir(dir, testPassword))
	defer fs.Close()
	a := must[Attr](t)(fs.Lookup(RootIno, "f"))
	if a.Mode&0o7777 != mode || a.UID != uid || !a.Mtime.Equal(when) {
		t.Fatalf("attributes after the crash: mode %o uid %d mtime %v", a.Mode&0o7777, a.UID, a.Mtime)
	}
	if v := must[[]byte](t)(fs.GetXattr(f.Ino, "user.k")); string(v) != "v" {
		t.Fatalf("xattr after the crash: %q", v)
	}
	o, err := fs.Lookup(RootIno, "open")
	if err != nil {
		t.Fatalf("a file never closed is lost: %v", err)
	}
	if got := readAll(t, fs, o.Ino); !bytes.Equal(got, bytes.Repeat([]byte("p"), 5000)) {
		t.Fatalf("its content after the crash: %d bytes", len(got))
	}
}

// TestWriteBackQuietWhenClean: with nothing unsaved, the write-back
// writes nothing, and does not keep the keys from their idle wipe.
func TestWriteBackQuietWhenClean(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs, secret, err := Unlock(st, testPassword, Options{WriteBack: 20 * time.Millisecond, Idle: 50 * time.Millisecond})
	must0(t, err)
	clear(secret)
	defer fs.Close()
	time.Sleep(300 * time.Millisecond)
	if w := st.writes(); len(w) != 0 {
		t.Fatalf("write-back of a clean store wrote %v", w)
	}
	if fs.keysLoaded() {
		t.Fatal("keys not wiped: the write-back counted as activity")
	}
	_, err = fs.Lookup(RootIno, "x")
	wantErr(t, err, syscall.ENOENT)
}
