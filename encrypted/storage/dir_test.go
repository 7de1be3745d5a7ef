package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	if _, err := d.Get("i/ab/abcd"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
	for _, v := range []string{"one", "two"} { // create, then replace
		if err := d.Put("i/ab/abcd", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Get("i/ab/abcd"); err != nil || string(got) != v {
			t.Fatalf("get: %q %v", got, err)
		}
	}
	if err := d.Delete("i/ab/abcd"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("i/ab/abcd"); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
	if _, err := d.Get("i/ab/abcd"); !errors.Is(err, ErrNotExist) {
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
	os.Mkdir(filepath.Join(group, "0000"), 0o700) // a folder is not an object
	var names []string
	for n, err := range d.List("d/0123") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"00ff", "abcdef"}) {
		t.Fatalf("list %q", names)
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
	if got, err := d.GetChunk(0xabc, 2); err != nil || len(got) != 1 || got[0] != 2 {
		t.Fatalf("chunk 2: %v %v", got, err)
	}
	if err := d.DeleteChunk(0xabc, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetChunk(0xabc, 1); !errors.Is(err, ErrNotExist) {
		t.Fatalf("deleted chunk: %v", err)
	}
	if _, err := d.GetChunk(0xabd, 0); !errors.Is(err, ErrNotExist) {
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
				got, err := d.Get("i/ab/abcd")
				chunk, cerr := d.GetChunk(7, 1)
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
	got, err := d.Get("i/cd/cdef")
	chunk, cerr := d.GetChunk(9, 0)
	if err != nil || cerr != nil || string(got) != "second" || string(chunk) != "chunk" {
		t.Fatalf("got %q %q %v %v", got, chunk, err, cerr)
	}
	d.mu.Lock()
	_, dirty := d.dirtyFile[p]
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
