package encrypted

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// objectCount counts the inode, entry and chunk objects in a data dir.
func objectCount(t *testing.T, dir string) (inodes, entries, chunks int) {
	t.Helper()
	for kind, n := range map[string]*int{"i": &inodes, "d": &entries, "c": &chunks} {
		err := filepath.WalkDir(filepath.Join(dir, kind), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				*n++
			}
			return err
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return inodes, entries, chunks
}

// A small file's content lives in its inode; it moves to a chunk object
// when it grows past maxInline and back when it shrinks.
func TestInlineContent(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, DefaultChunkSize)
		f := must[Attr](t)(fs.Create(RootIno, "small", 0o644, me))
		small := bytes.Repeat([]byte("s"), maxInline)
		must[int](t)(fs.Write(f.Ino, small, 0))
		must0(t, fs.Release(f.Ino))
		if n := countChunks(t, dir, f.Ino); n != 0 {
			t.Fatalf("%d-byte file: %d chunk objects, want 0", len(small), n)
		}
		if a := must[Attr](t)(fs.GetAttr(f.Ino)); a.Blocks != maxInline/512 {
			t.Fatalf("blocks %d, want %d", a.Blocks, maxInline/512)
		}

		// One byte more: chunk 0 becomes an object.
		must[int](t)(fs.Write(f.Ino, []byte("!"), maxInline))
		must0(t, fs.Flush(f.Ino))
		if n := countChunks(t, dir, f.Ino); n != 1 {
			t.Fatalf("%d-byte file: %d chunk objects, want 1", maxInline+1, n)
		}
		fs = reopen(t, fs, dir)
		want := append(slices.Clone(small), '!')
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatalf("after growing: %d bytes, want %d", len(got), len(want))
		}

		// Shrinking moves it back in; the chunk object goes.
		size := uint64(10)
		must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Size: &size}))
		if n := countChunks(t, dir, f.Ino); n != 0 {
			t.Fatalf("after shrinking: %d chunk objects, want 0", n)
		}
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, small[:10]) {
			t.Fatalf("after shrinking: %q", got)
		}

		// A sparse file keeps a small chunk 0 inline and the rest as chunks.
		must[int](t)(fs.Write(f.Ino, []byte("far"), 3*DefaultChunkSize))
		must0(t, fs.Flush(f.Ino))
		want = make([]byte, 3*DefaultChunkSize+3)
		copy(want, small[:10])
		copy(want[3*DefaultChunkSize:], "far")
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatal("sparse file with inline chunk 0 reads wrong")
		}
		if n := countChunks(t, dir, f.Ino); n != 1 {
			t.Fatalf("sparse: %d chunk objects, want 1", n)
		}
	})
}

// An inode decodes to itself; another version, or one cut before the
// inline field, is corrupt.
func TestDecodeInodeVersion(t *testing.T) {
	in := &inode{mode: syscall.S_IFREG | 0o640, size: 7, extents: extents{{0, 1}}}
	in.addLink(link{dir: RootIno, tag: [tagSize]byte{1}})
	b := in.encode()
	got, err := decodeInode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.mode != in.mode || got.size != 7 || !slices.Equal(got.extents, in.extents) || got.inline != nil {
		t.Fatalf("decoded %+v", got)
	}
	for _, bad := range [][]byte{append([]byte{2}, b[1:]...), append([]byte{0}, b[1:]...), b[:len(b)-4]} {
		if _, err := decodeInode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode of a bad inode: %v", err)
		}
	}
	// An inode listing chunk 0 both ways is corrupt.
	in.inline = []byte("x")
	if _, err := decodeInode(in.encode()); !isCorrupt(err) {
		t.Fatalf("chunk 0 twice: %v", err)
	}
}

// A created file stays in memory until it is flushed: then its inode and
// entry are stored at once. Until then every operation sees it.
func TestPendingCreate(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, DefaultChunkSize)
	d := must[Attr](t)(fs.Mkdir(RootIno, "d", 0o755, me))
	must0(t, fs.Sync())
	i0, e0, _ := objectCount(t, dir)

	f := must[Attr](t)(fs.Create(d.Ino, "f", 0o644, me))
	must[int](t)(fs.Write(f.Ino, []byte("hello"), 0))
	if i, e, _ := objectCount(t, dir); i != i0 || e != e0 {
		t.Fatalf("before flush: %d inodes, %d entries stored, want %d, %d", i, e, i0, e0)
	}
	// Seen by lookup, readdir, create (EEXIST) and rmdir (ENOTEMPTY).
	if a := must[Attr](t)(fs.Lookup(d.Ino, "f")); a.Ino != f.Ino || a.Size != 5 {
		t.Fatalf("lookup pending: %+v", a)
	}
	_, err := fs.Create(d.Ino, "f", 0o644, me)
	wantErr(t, err, syscall.EEXIST)
	wantErr(t, fs.Rmdir(RootIno, "d"), syscall.ENOTEMPTY)
	if names := dirNames(t, fs, d.Ino); !slices.Equal(names, []string{"f"}) {
		t.Fatalf("readdir: %q", names)
	}

	// fsync of the directory stores its pending names.
	ib, eb, _ := objectCount(t, dir)
	must[Attr](t)(fs.Create(d.Ino, "e", 0o644, me))
	must0(t, fs.Fsync(d.Ino))
	if i, e, _ := objectCount(t, dir); i != ib+1 || e != eb+1 {
		t.Fatalf("after fsync of the directory: %d inodes, %d entries, want %d, %d", i, e, ib+1, eb+1)
	}
	must0(t, fs.Unlink(d.Ino, "e"))

	// Flush stores it: one inode, one entry, content inline.
	g := must[Attr](t)(fs.Create(d.Ino, "g", 0o644, me))
	must[int](t)(fs.Write(g.Ino, []byte("world"), 0))
	must0(t, fs.Release(g.Ino))
	i, e, c := objectCount(t, dir)
	// readdir above stored f; Release stored g.
	if i != i0+2 || e != e0+2 || c != 0 {
		t.Fatalf("after flush: %d inodes, %d entries, %d chunks; want %d, %d, 0", i, e, c, i0+2, e0+2)
	}

	// Rename, link and unlink of a pending name.
	h := must[Attr](t)(fs.Create(d.Ino, "h", 0o644, me))
	must[int](t)(fs.Write(h.Ino, []byte("moved"), 0))
	must0(t, fs.Rename(d.Ino, "h", RootIno, "h2", 0))
	k := must[Attr](t)(fs.Create(d.Ino, "k", 0o644, me))
	must[Attr](t)(fs.Link(k.Ino, RootIno, "k2"))
	u := must[Attr](t)(fs.Create(d.Ino, "u", 0o644, me))
	must[Attr](t)(fs.Open(u.Ino)) // as the FUSE layer does after create
	must0(t, fs.Unlink(d.Ino, "u"))
	must[int](t)(fs.Write(u.Ino, []byte("open, unlinked"), 0))
	must0(t, fs.Release(u.Ino)) // the last handle: u goes
	if _, err := fs.GetAttr(u.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unlinked file after release: %v", err)
	}

	// A crash (no close, no sync) keeps what was flushed.
	lost := must[Attr](t)(fs.Create(d.Ino, "lost", 0o644, me))
	must[int](t)(fs.Write(lost.Ino, []byte("never flushed"), 0))
	crash(fs)
	fs2 := must[*FS](t)(openDir(dir, testPassword))
	defer fs2.Close()
	if names := dirNames(t, fs2, d.Ino); !slices.Equal(names, []string{"f", "g", "k"}) {
		t.Fatalf("after crash, d holds %q", names)
	}
	if names := dirNames(t, fs2, RootIno); !slices.Equal(names, []string{"d", "h2", "k2"}) {
		t.Fatalf("after crash, root holds %q", names)
	}
	if got := readAll(t, fs2, must[Attr](t)(fs2.Lookup(RootIno, "h2")).Ino); string(got) != "moved" {
		t.Fatalf("renamed pending file reads %q", got)
	}
	if a := must[Attr](t)(fs2.Lookup(RootIno, "k2")); a.Nlink != 2 || a.Ino != k.Ino {
		t.Fatalf("linked pending file: %+v", a)
	}
	if got := readAll(t, fs2, g.Ino); string(got) != "world" {
		t.Fatalf("flushed file reads %q", got)
	}
}

func dirNames(t *testing.T, fs *FS, ino Ino) []string {
	t.Helper()
	var names []string
	for d, err := range fs.ReadDir(ino) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, d.Name)
	}
	slices.Sort(names)
	return names
}

// Attribute changes to files nobody has open wait in a bounded queue:
// stored by Sync, or when maxAttrQueue of them are waiting.
func TestIdleAttrQueue(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, DefaultChunkSize)
	inos := make([]Ino, maxAttrQueue)
	for i := range inos {
		inos[i] = must[Attr](t)(fs.Create(RootIno, fmt.Sprintf("f%d", i), 0o644, me)).Ino
		must0(t, fs.Release(inos[i]))
	}
	must0(t, fs.Sync())
	onDisk := func(ino Ino) []byte {
		return readFile(t, filepath.Join(dir, filepath.FromSlash(inodeName(ino))))
	}
	before := onDisk(inos[0])
	mode := uint32(0o600)
	must[Attr](t)(fs.SetAttr(inos[0], SetAttr{Mode: &mode}))
	if !bytes.Equal(onDisk(inos[0]), before) {
		t.Fatal("a single chmod was stored at once, not queued")
	}
	must0(t, fs.Sync())
	if bytes.Equal(onDisk(inos[0]), before) {
		t.Fatal("Sync did not store the queued chmod")
	}
	fs = reopen(t, fs, dir)
	defer fs.Close()
	if got := must[Attr](t)(fs.GetAttr(inos[0])); got.Mode&0o777 != 0o600 {
		t.Fatalf("mode after reopen %o", got.Mode)
	}

	before = onDisk(inos[1])
	for _, ino := range inos[1:] {
		must[Attr](t)(fs.SetAttr(ino, SetAttr{Mode: &mode}))
	}
	if !bytes.Equal(onDisk(inos[1]), before) {
		t.Fatalf("%d queued changes were stored before the queue was full", maxAttrQueue-1)
	}
	must[Attr](t)(fs.SetAttr(inos[0], SetAttr{Mode: &mode})) // the maxAttrQueue-th
	if bytes.Equal(onDisk(inos[1]), before) {
		t.Fatalf("a full queue of %d changes was not stored", maxAttrQueue)
	}
	fs.mu.Lock()
	queued := len(fs.attrQueue)
	fs.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d changes still queued after a full batch", queued)
	}
}

// TestNoZerosAfterCrash: rename, link and unlink-one-name store a file's
// inode while some of its written bytes still sit in a chunk slot. After
// a crash those bytes are there, or (not stored yet) the size does not
// claim them; never zeros in their place.
func TestNoZerosAfterCrash(t *testing.T) {
	for _, op := range []string{"rename", "link", "unlink-other"} {
		t.Run(op, func(t *testing.T) {
			fs, dir := newTestFS(t, XChaCha20Poly1305, 4096)
			a := must[Attr](t)(fs.Create(RootIno, "a", 0o644, me))
			must[int](t)(fs.Write(a.Ino, []byte("hello"), 0))
			must[Attr](t)(fs.Link(a.Ino, RootIno, "other"))
			must0(t, fs.Release(a.Ino))
			must[Attr](t)(fs.Open(a.Ino))
			tail := bytes.Repeat([]byte("x"), 5000) // fills chunk 0, leaves chunk 1 in its slot
			must[int](t)(fs.Write(a.Ino, tail, 5))
			name := "a"
			switch op {
			case "rename":
				must0(t, fs.Rename(RootIno, "a", RootIno, "b", 0))
				name = "b"
			case "link":
				must[Attr](t)(fs.Link(a.Ino, RootIno, "c"))
			case "unlink-other":
				must0(t, fs.Unlink(RootIno, "other"))
			}
			crash(fs)
			fs = must[*FS](t)(openDir(dir, testPassword))
			defer fs.Close()
			got := readAll(t, fs, must[Attr](t)(fs.Lookup(RootIno, name)).Ino)
			full := append([]byte("hello"), tail...)
			if !bytes.Equal(got, full) && !bytes.Equal(got, full[:len(got)]) {
				t.Fatalf("after the crash: %d bytes, not a prefix of what was written (zeros at %d?)", len(got), bytes.IndexByte(got, 0))
			}
		})
	}
}
