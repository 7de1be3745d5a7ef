package storage

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirObjects(t *testing.T) {
	d := newDir(t)
	if _, err := d.Get("i/ab/abcd", 1<<20); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
	for _, v := range []string{"one", "two"} { // create, then replace
		if err := d.Put("i/ab/abcd", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Get("i/ab/abcd", 1<<20); err != nil || string(got) != v {
			t.Fatalf("get: %q %v", got, err)
		}
	}
	if err := d.Delete("i/ab/abcd"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("i/ab/abcd"); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
	if _, err := d.Get("i/ab/abcd", 1<<20); !errors.Is(err, ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	for _, bad := range []string{"", "../x", "i/../../x", "/abs", "I/AB", "i//x", ".hidden"} {
		if err := d.Put(bad, nil); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestDirListSkipsForeignFiles(t *testing.T) {
	d := newDir(t)
	for _, n := range []string{"00ff", "abcdef"} {
		if err := d.Put("d/0123/"+n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	group := filepath.Join(d.Root(), "d", "0123")
	for _, foreign := range []string{"desktop.ini", ".DS_Store", ".tmp-123", "abcdef (conflicted copy)", "ABCD"} {
		os.WriteFile(filepath.Join(group, foreign), nil, 0o600)
	}
	// A folder (or a symlink, a FIFO) under an object's name is listed:
	// reading it then fails as damage, where skipping it would silently
	// shorten the listing.
	os.Mkdir(filepath.Join(group, "0000"), 0o700)
	var names []string
	for n, err := range d.List("d/0123") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"0000", "00ff", "abcdef"}) {
		t.Fatalf("list %q", names)
	}
	if _, err := d.Get("d/0123/0000", 1<<20); !errors.Is(err, ErrBadObject) {
		t.Fatalf("get of a folder: %v", err)
	}
	for range d.List("d/4567") {
		t.Fatal("a missing group lists something")
	}
}

func TestDirChunks(t *testing.T) {
	d := newDir(t)
	for i := range uint64(3) {
		if err := d.PutChunk(0xabc, i, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.GetChunk(0xabc, 2, 1<<20); err != nil || len(got) != 1 || got[0] != 2 {
		t.Fatalf("chunk 2: %v %v", got, err)
	}
	if err := d.DeleteChunk(0xabc, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetChunk(0xabc, 1, 1<<20); !errors.Is(err, ErrNotExist) {
		t.Fatalf("deleted chunk: %v", err)
	}
	if _, err := d.GetChunk(0xabd, 0, 1<<20); !errors.Is(err, ErrNotExist) {
		t.Fatalf("another file's chunk: %v", err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	u, err := d.Usage()
	if err != nil || u.Blocks == 0 {
		t.Fatalf("usage %+v %v", u, err)
	}
}

func TestOpenDirErrors(t *testing.T) {
	if _, err := OpenDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := OpenDir(f); err == nil {
		t.Fatal("a file accepted as data dir")
	}
}

func TestDirSyncMany(t *testing.T) {
	d := newDir(t)
	for i := range syncfsThreshold + 10 { // past the threshold: one syncfs
		if err := d.Put(fmt.Sprintf("i/%02x/%016x", i%256, i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(d.dirtyFile) + len(d.dirtyDir); n != 0 {
		t.Fatalf("%d paths still dirty after Sync", n)
	}
}

// Both ways of writing an object (unnamed file linked in, or a named
// temporary file renamed) create and replace objects whole and leave no
// temporary file behind.
func TestDirPutWays(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			d := newDir(t)
			d.noTmpfile.Store(named)
			for i, v := range []string{"new", "replaced", "again"} {
				if err := d.Put("i/ab/abcd", []byte(v)); err != nil {
					t.Fatal(err)
				}
				if err := d.PutChunk(7, 1, []byte(v)); err != nil {
					t.Fatal(err)
				}
				got, err := d.Get("i/ab/abcd", 1<<20)
				chunk, cerr := d.GetChunk(7, 1, 1<<20)
				if err != nil || cerr != nil || string(got) != v || string(chunk) != v {
					t.Fatalf("put %d: %q %q %v %v", i, got, chunk, err, cerr)
				}
			}
			if !named && d.noTmpfile.Load() {
				t.Fatal("O_TMPFILE failed on the test directory: the linked way went untested")
			}
			var files []string
			filepath.WalkDir(d.Root(), func(p string, e os.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					files = append(files, filepath.Base(p))
				}
				return err
			})
			slices.Sort(files)
			if want := []string{"00000000000000070000000000000001", "abcd"}; !slices.Equal(files, want) {
				t.Fatalf("files %q, want %q", files, want)
			}
		})
	}
}

// TestDirPutNew: PutNew creates an object (and its group) in place, replaces
// a leftover under the same name whole, and leaves it for the next Sync.
func TestDirPutNew(t *testing.T) {
	d := newDir(t)
	if err := d.PutNew("i/cd/cdef", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutNewChunk(9, 0, []byte("chunk")); err != nil {
		t.Fatal(err)
	}
	// A partial object left by a crash: PutNew must replace it, not fail.
	p := filepath.Join(d.Root(), "i", "cd", "cdef")
	if err := os.WriteFile(p, []byte("fi"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.PutNew("i/cd/cdef", []byte("second")); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get("i/cd/cdef", 1<<20)
	chunk, cerr := d.GetChunk(9, 0, 1<<20)
	if err != nil || cerr != nil || string(got) != "second" || string(chunk) != "chunk" {
		t.Fatalf("got %q %q %v %v", got, chunk, err, cerr)
	}
	d.mu.Lock()
	_, dirty := d.dirtyFile["i/cd/cdef"]
	d.mu.Unlock()
	if !dirty {
		t.Fatal("PutNew's object is not in the next Sync")
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Dir(p))
	if err != nil || len(ents) != 1 || ents[0].Name() != "cdef" {
		t.Fatalf("group holds %v (%v), want only the object", ents, err)
	}
}

// TestDirHostileObjects: what stands under an object's name in a data dir
// someone else controls is never followed, waited on, or read past the
// caller's limit; each case is ErrBadObject at once.
func TestDirHostileObjects(t *testing.T) {
	d := newDir(t)
	if err := d.Put("i/ab/0001", []byte("inside")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside the data dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := func(name string) string { return filepath.Join(d.Root(), filepath.FromSlash(name)) }
	mk := map[string]func(p string) error{
		"fifo":           func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"symlink-zero":   func(p string) error { return os.Symlink("/dev/zero", p) },
		"symlink-out":    func(p string) error { return os.Symlink(outside, p) },
		"symlink-inside": func(p string) error { return os.Symlink(path("i/ab/0001"), p) },
		"directory":      func(p string) error { return os.Mkdir(p, 0o700) },
		"sparse-64GiB": func(p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(64 << 30)
		},
	}
	for what, create := range mk {
		t.Run(what, func(t *testing.T) {
			name := "i/ab/00ff"
			os.RemoveAll(path(name))
			if err := create(path(name)); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := d.Get(name, 1<<20); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrBadObject) {
					t.Fatalf("Get: %v, want ErrBadObject", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Get blocked")
			}
		})
	}
	// A folder replaced by a symlink to one outside: not followed.
	if err := os.MkdirAll(filepath.Join(filepath.Dir(outside), "c0"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(outside), "c0", "0001"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(outside), "c0"), path("i/c0")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get("i/c0/0001", 1<<20); !errors.Is(err, ErrBadObject) {
		t.Fatalf("through a symlinked folder: %v", err)
	}
	// Writes and deletes through it touch nothing outside either.
	outsideDir := filepath.Join(filepath.Dir(outside), "c0")
	for what, err := range map[string]error{
		"put":     d.Put("i/c0/0002", []byte("x")),
		"put new": d.PutNew("i/c0/0003", []byte("x")),
		"durable": d.PutDurable("i/c0/0004", []byte("x")),
		"delete":  d.Delete("i/c0/0001"),
	} {
		if !errors.Is(err, ErrBadObject) {
			t.Errorf("%s through a symlinked folder: %v", what, err)
		}
	}
	if err := os.Symlink(outsideDir, path("c")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutChunk(1, 0, []byte("x")); !errors.Is(err, ErrBadObject) {
		t.Errorf("chunk through a symlinked top folder: %v", err)
	}
	if ents, _ := os.ReadDir(outsideDir); len(ents) != 1 {
		t.Fatalf("the folder outside holds %d files, want its 1", len(ents))
	}
	for name, err := range d.List("i/c0") {
		if !errors.Is(err, ErrBadObject) {
			t.Fatalf("listing a symlinked group gave %q, %v", name, err)
		}
	}
	// An object exactly at the limit reads; one byte more does not.
	if b, err := d.Get("i/ab/0001", 6); err != nil || string(b) != "inside" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	if _, err := d.Get("i/ab/0001", 5); !errors.Is(err, ErrBadObject) {
		t.Fatalf("over the limit: %v", err)
	}
}

// TestDirLock: one open Dir per data dir; a second open fails naming the
// holder; a holder that dies (here: a child process killed) leaves no lock.
func TestDirLock(t *testing.T) {
	d := newDir(t)
	_, err := OpenDir(d.Root())
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID != os.Getpid() {
		t.Fatalf("second open: %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("message lacks the pid: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// flock(1) takes the lock in a child, which we kill.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	cmd := exec.Command("flock", "-x", d.Root(), "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to kill sleep with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d2, err := OpenDir(d.Root())
		if err != nil {
			if !errors.As(err, &le) || le.PID == 0 {
				t.Fatalf("held by a child: %v", err)
			}
			break
		}
		d2.Close()
		if time.Now().After(deadline) {
			t.Fatal("the child never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	// The kernel drops the lock as the killed sleep's files close, which
	// may come a moment after flock itself was reaped.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		d2, err := OpenDir(d.Root())
		if err == nil {
			d2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the holder was killed: %v", err)
		}
	}
}
