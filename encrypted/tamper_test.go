package encrypted

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// tamperFixture is a small store: root/{d/a, b}, a and b two chunks each.
type tamperFixture struct {
	dir          string
	d, a, b      Ino
	aData, bData []byte
}

const tamperChunk = 4096

func newTamperFixture(t *testing.T, c Cipher) *tamperFixture {
	fs, dir := newTestFS(t, c, tamperChunk)
	x := &tamperFixture{dir: dir}
	x.d = must[Attr](t)(fs.Mkdir(RootIno, "d", 0o755, me)).Ino
	x.a = must[Attr](t)(fs.Create(x.d, "a", 0o644, me)).Ino
	x.b = must[Attr](t)(fs.Create(RootIno, "b", 0o644, me)).Ino
	x.aData = bytes.Repeat([]byte("A"), tamperChunk+100)
	x.bData = bytes.Repeat([]byte("B"), tamperChunk+100)
	must[int](t)(fs.Write(x.a, x.aData, 0))
	must[int](t)(fs.Write(x.b, x.bData, 0))
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *tamperFixture) inodePath(ino Ino) string {
	return filepath.Join(x.dir, filepath.FromSlash(inodeName(ino)))
}

func (x *tamperFixture) chunkPath(ino Ino, idx uint64) string {
	name := fmt.Sprintf("%016x%016x", uint64(ino), idx)
	return filepath.Join(x.dir, "c", name[:2], name)
}

func (x *tamperFixture) entryPath(t *testing.T, dir Ino, name string) string {
	fs, err := openDir(x.dir, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	return filepath.Join(x.dir, filepath.FromSlash(fs.entryName(dir, fs.keys.names.entryTag(dir, name))))
}

type tamper struct {
	name string
	do   func(t *testing.T, p, other string)
}

var tampers = []tamper{
	{"flip", func(t *testing.T, p, _ string) { editFile(t, p, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }) }},
	{"flip-first", func(t *testing.T, p, _ string) { editFile(t, p, func(b []byte) []byte { b[0] ^= 0x80; return b }) }},
	{"truncate", func(t *testing.T, p, _ string) { editFile(t, p, func(b []byte) []byte { return b[:len(b)-1] }) }},
	{"truncate-empty", func(t *testing.T, p, _ string) { editFile(t, p, func(b []byte) []byte { return nil }) }},
	{"extend", func(t *testing.T, p, _ string) { editFile(t, p, func(b []byte) []byte { return append(b, 0) }) }},
	{"swap", func(t *testing.T, p, other string) {
		a, b := readFile(t, p), readFile(t, other)
		writeFile(t, p, b)
		writeFile(t, other, a)
	}},
	{"replay-other", func(t *testing.T, p, other string) { writeFile(t, p, readFile(t, other)) }},
	{"delete", func(t *testing.T, p, _ string) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}},
}

func readFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, p string, f func([]byte) []byte) { writeFile(t, p, f(readFile(t, p))) }

// checkOthers verifies that what was not tampered with still works.
func (x *tamperFixture) checkB(t *testing.T, fs *FS) {
	t.Helper()
	b := must[Attr](t)(fs.Lookup(RootIno, "b"))
	if got := readAll(t, fs, b.Ino); !bytes.Equal(got, x.bData) {
		t.Fatal("untouched file b reads wrong")
	}
	// The store still takes writes.
	must[Attr](t)(fs.Create(RootIno, "new", 0o644, me))
}

// readErr reads a whole file through lookup, returning the first error.
func readErr(fs *FS, dir Ino, name string) ([]byte, error) {
	a, err := fs.Lookup(dir, name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, a.Size)
	n, err := fs.Read(a.Ino, buf, 0)
	return buf[:n], err
}

func isCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

func TestTamperChunks(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		for _, tm := range tampers {
			t.Run(tm.name, func(t *testing.T) {
				x := newTamperFixture(t, c)
				other := x.chunkPath(x.a, 1) // swap within the file
				if tm.name == "replay-other" {
					other = x.chunkPath(x.b, 0) // another file's chunk, same index
				}
				tm.do(t, x.chunkPath(x.a, 0), other)
				fs := must[*FS](t)(openDir(x.dir, testPassword))
				defer fs.Close()
				got, err := readErr(fs, x.d, "a")
				if !isCorrupt(err) {
					t.Fatalf("read tampered file: err %v, %d bytes", err, len(got))
				}
				if tm.name != "swap" {
					x.checkB(t, fs)
				}
			})
		}
	})
}

func TestTamperInodes(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		for _, tm := range tampers {
			t.Run(tm.name, func(t *testing.T) {
				x := newTamperFixture(t, c)
				tm.do(t, x.inodePath(x.a), x.inodePath(x.b))
				fs := must[*FS](t)(openDir(x.dir, testPassword))
				defer fs.Close()
				_, err := readErr(fs, x.d, "a")
				if !isCorrupt(err) {
					t.Fatalf("lookup of tampered inode: %v", err)
				}
				// The directory itself still lists.
				if names := listNames(t, fs, x.d); len(names) != 1 {
					t.Fatalf("d lists %v", names)
				}
				if tm.name == "swap" {
					_, err := readErr(fs, RootIno, "b")
					if !isCorrupt(err) {
						t.Fatalf("swapped-in inode accepted: %v", err)
					}
					return
				}
				x.checkB(t, fs)
			})
		}
	})
}

func TestTamperEntries(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		for _, tm := range tampers {
			t.Run(tm.name, func(t *testing.T) {
				x := newTamperFixture(t, c)
				p := x.entryPath(t, RootIno, "b")
				other := x.entryPath(t, RootIno, "d") // same directory
				if tm.name == "replay-other" {
					other = x.entryPath(t, x.d, "a") // another directory's entry
				}
				tm.do(t, p, other)
				fs := must[*FS](t)(openDir(x.dir, testPassword))
				defer fs.Close()
				_, err := fs.Lookup(RootIno, "b")
				if tm.name == "delete" {
					// A deleted entry is a missing name: all one can tell.
					wantErr(t, err, syscall.ENOENT)
				} else if !isCorrupt(err) {
					t.Fatalf("lookup of tampered entry: %v", err)
				}
				// readdir reports the damage and goes on to the rest.
				var good, bad int
				for d, err := range fs.ReadDir(RootIno) {
					switch {
					case err == nil && d.Name == "d" && d.Ino == x.d:
						good++
					case isCorrupt(err):
						bad++
					case err != nil:
						t.Fatalf("readdir: %v", err)
					}
				}
				switch tm.name {
				case "delete":
					if good != 1 || bad != 0 {
						t.Fatalf("readdir good=%d bad=%d", good, bad)
					}
				case "swap":
					if bad != 2 {
						t.Fatalf("readdir bad=%d, want 2", bad)
					}
				default:
					if good != 1 || bad != 1 {
						t.Fatalf("readdir good=%d bad=%d", good, bad)
					}
				}
				if tm.name != "swap" {
					if got, err := readErr(fs, x.d, "a"); err != nil || !bytes.Equal(got, x.aData) {
						t.Fatalf("untouched d/a: %v", err)
					}
				}
			})
		}
	})
}

func TestTamperHeader(t *testing.T) {
	for _, tm := range tampers {
		t.Run(tm.name, func(t *testing.T) {
			x := newTamperFixture(t, XChaCha20Poly1305)
			p := filepath.Join(x.dir, HeaderName)
			// Another store's header, with the same password.
			y := newTamperFixture(t, XChaCha20Poly1305)
			tm.do(t, p, filepath.Join(y.dir, HeaderName))
			fs, err := openDir(x.dir, testPassword)
			switch tm.name {
			case "delete":
				wantErr(t, err, ErrNotStore)
			case "swap", "replay-other":
				// It unwraps the other store's key, which opens none of these objects.
				if err != nil {
					t.Fatal(err)
				}
				defer fs.Close()
				_, err = fs.GetAttr(RootIno)
				wantErr(t, err, ErrCorrupt)
			default:
				wantErr(t, err, ErrCorrupt)
			}
		})
	}
}

func TestHeaderParamsBound(t *testing.T) {
	// A header whose parameters were changed and checksum recomputed: the
	// wrap's associated data catches it, reported as a wrong password.
	dir := newTestDir(t, AES256GCM, 0)
	p := filepath.Join(dir, HeaderName)
	h, err := decodeHeader(readFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	h.cipher = XChaCha20Poly1305
	writeFile(t, p, h.encode())
	_, err = openDir(dir, testPassword)
	wantErr(t, err, ErrWrongPassword)
}

func TestHeaderNewerVersion(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	p := filepath.Join(dir, HeaderName)
	editFile(t, p, func(b []byte) []byte { b[7] = 9; return b })
	_, err := openDir(dir, testPassword)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Found != 9 || ve.Supported != FormatVersion {
		t.Fatalf("err = %v", err)
	}
	if want := "data dir format version 9 is newer than this rencfs supports (version 1); upgrade rencfs"; err.Error() != want {
		t.Fatalf("message %q", err)
	}
}

func TestForeignFilesIgnored(t *testing.T) {
	x := newTamperFixture(t, XChaCha20Poly1305)
	entry := x.entryPath(t, RootIno, "b")
	for _, p := range []string{
		filepath.Join(x.dir, ".dropbox"),
		filepath.Join(x.dir, "desktop.ini"),
		filepath.Join(filepath.Dir(entry), "desktop.ini"),
		entry + " (conflicted copy 2026-01-01)",
		filepath.Join(filepath.Dir(entry), ".DS_Store"),
		filepath.Join(filepath.Dir(entry), hex.EncodeToString([]byte("short"))),
	} {
		writeFile(t, p, []byte("foreign"))
	}
	fs := must[*FS](t)(openDir(x.dir, testPassword))
	defer fs.Close()
	var names []string
	for d, err := range fs.ReadDir(RootIno) {
		if err != nil {
			t.Fatalf("readdir with foreign files: %v", err)
		}
		names = append(names, d.Name)
	}
	if len(names) != 2 {
		t.Fatalf("readdir %v", names)
	}
	x.checkB(t, fs)
}

// entryFile is the path of the entry object of name in dir.
func entryFile(fs *FS, dataDir string, dir Ino, name string) string {
	return filepath.Join(dataDir, filepath.FromSlash(fs.entryName(dir, fs.keys.names.entryTag(dir, name))))
}

// TestReplayedEntryRefused: an entry put back from an older copy of the
// data dir authenticates, but its inode does not list it: looking it up is
// EIO, and removing it frees nothing that a real name still uses. (Before,
// unlinking a replayed hard link dropped the link count of a file whose
// other name then pointed to a deleted inode.)
func TestReplayedEntryRefused(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	f := must[Attr](t)(fs.Create(RootIno, "a", 0o644, me))
	must[int](t)(fs.Write(f.Ino, []byte("still here"), 0))
	must[Attr](t)(fs.Link(f.Ino, RootIno, "b"))
	must[Attr](t)(fs.Link(f.Ino, RootIno, "c"))
	must0(t, fs.Sync())
	cPath := entryFile(fs, dir, RootIno, "c")
	old := readFile(t, cPath)
	must0(t, fs.Unlink(RootIno, "c"))
	must0(t, fs.Close())
	writeFile(t, cPath, old) // the replay

	fs = must[*FS](t)(openDir(dir, testPassword))
	defer fs.Close()
	_, err := fs.Lookup(RootIno, "c")
	wantErr(t, err, ErrCorrupt)
	must0(t, fs.Unlink(RootIno, "a"))
	must0(t, fs.Unlink(RootIno, "c")) // removes the stale entry, and only it
	b := must[Attr](t)(fs.Lookup(RootIno, "b"))
	if b.Nlink != 1 {
		t.Fatalf("link count %d after the replayed entry went, want 1", b.Nlink)
	}
	if got := readAll(t, fs, f.Ino); string(got) != "still here" {
		t.Fatalf("b reads %q", got)
	}
	// A rename of the replayed name is refused, not turned into a real one.
	writeFile(t, cPath, old)
	wantErr(t, fs.Rename(RootIno, "c", RootIno, "d", 0), ErrCorrupt)
}

// TestReplayedDirEntryRefused: a directory moved elsewhere keeps its old
// entry's replay from working as a second name; rmdir of that name
// removes the entry only, never the directory its real name holds.
func TestReplayedDirEntryRefused(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	a := must[Attr](t)(fs.Mkdir(RootIno, "a", 0o755, me))
	b := must[Attr](t)(fs.Mkdir(RootIno, "b", 0o755, me))
	d := must[Attr](t)(fs.Mkdir(a.Ino, "d", 0o755, me))
	must0(t, fs.Sync())
	oldPath := entryFile(fs, dir, a.Ino, "d")
	old := readFile(t, oldPath)
	must0(t, fs.Rename(a.Ino, "d", b.Ino, "d", 0))
	must0(t, fs.Close())
	writeFile(t, oldPath, old)

	fs = must[*FS](t)(openDir(dir, testPassword))
	defer fs.Close()
	_, err := fs.Lookup(a.Ino, "d")
	wantErr(t, err, ErrCorrupt)
	must0(t, fs.Rmdir(a.Ino, "d"))
	if got := must[Attr](t)(fs.Lookup(b.Ino, "d")); got.Ino != d.Ino {
		t.Fatalf("b/d is inode %x, want %x", got.Ino, d.Ino)
	}
	if n := listNames(t, fs, a.Ino); len(n) != 0 {
		t.Fatalf("a still lists %v", n)
	}
	if got := must[Attr](t)(fs.GetAttr(a.Ino)); got.Nlink != 2 {
		t.Fatalf("a's link count %d, want 2", got.Nlink)
	}
}
