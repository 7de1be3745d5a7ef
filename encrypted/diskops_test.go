package encrypted

// Tests of which disk operations the store chooses, through a storage
// wrapper that logs them.

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// putLog records how each object was written.
type putLog struct {
	storage.Storage
	mu  sync.Mutex
	ops []string
}

func (p *putLog) log(op, name string) {
	p.mu.Lock()
	p.ops = append(p.ops, op+" "+name)
	p.mu.Unlock()
}

func (p *putLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := p.ops
	p.ops = nil
	slices.Sort(ops)
	return ops
}

// writes is take without the reads.
func (p *putLog) writes() []string {
	return slices.DeleteFunc(p.take(), func(op string) bool { return op[:4] == "get " })
}

func (p *putLog) Put(name string, b []byte) error {
	p.log("put", name)
	return p.Storage.Put(name, b)
}

func (p *putLog) PutNew(name string, b []byte) error {
	p.log("new", name)
	return p.Storage.PutNew(name, b)
}

func (p *putLog) PutChunk(f, i uint64, b []byte) error {
	p.log("put", fmt.Sprintf("chunk %d", i))
	return p.Storage.PutChunk(f, i, b)
}

func (p *putLog) PutNewChunk(f, i uint64, b []byte) error {
	p.log("new", fmt.Sprintf("chunk %d", i))
	return p.Storage.PutNewChunk(f, i, b)
}

// TestPutNewOnlyUnreferenced: the cheap, non-atomic PutNew is used exactly
// for objects nothing refers to yet (a new inode before its entry, a chunk
// before its inode lists it); everything already referred to is replaced
// atomically.
func TestPutNewOnlyUnreferenced(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs := unlockT(t, st)
	defer fs.Close()
	cs := fs.ChunkSize()
	sub := must[Attr](t)(fs.Mkdir(RootIno, "sub", 0o755, me))
	want := []string{
		"new " + inodeName(sub.Ino),
		"put " + inodeName(RootIno), // its link count
		"put " + fs.entryName(RootIno, fs.keys.names.entryTag(RootIno, "sub")),
	}
	if got := st.writes(); !sameSet(got, want) {
		t.Fatalf("mkdir wrote\n%q\nwant\n%q", got, want)
	}

	f := must[Attr](t)(fs.Create(sub.Ino, "f", 0o644, me))
	fs.Open(f.Ino)
	must[int](t)(fs.Write(f.Ino, make([]byte, cs+100), 0))
	if err := fs.Flush(f.Ino); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"new " + inodeName(f.Ino),
		"new chunk 0",
		"new chunk 1",
		"put " + fs.entryName(sub.Ino, fs.keys.names.entryTag(sub.Ino, "f")),
	}
	if got := st.writes(); !sameSet(got, want) {
		t.Fatalf("a new file wrote\n%q\nwant\n%q", got, want)
	}

	must[int](t)(fs.Write(f.Ino, []byte("changed"), 0))
	must[int](t)(fs.Write(f.Ino, []byte("grown"), int64(3*cs)))
	if err := fs.Flush(f.Ino); err != nil {
		t.Fatal(err)
	}
	want = []string{"new chunk 3", "put " + inodeName(f.Ino), "put chunk 0"}
	if got := st.writes(); !sameSet(got, want) {
		t.Fatalf("a changed file wrote\n%q\nwant\n%q", got, want)
	}
	fs.Release(f.Ino)
	back := make([]byte, 7)
	must[int](t)(fs.Read(f.Ino, back, 0))
	if string(back) != "changed" {
		t.Fatalf("read %q", back)
	}
}

func sameSet(got, want []string) bool {
	slices.Sort(want)
	return slices.Equal(got, want)
}

func (p *putLog) Get(name string, limit int) ([]byte, error) {
	p.log("get", name)
	return p.Storage.Get(name, limit)
}

// TestCreateAfterLookup: a create right after the lookup that found the
// name absent does not ask the disk again, and any name added in between
// voids what the lookup found.
func TestCreateAfterLookup(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs := unlockT(t, st)
	defer fs.Close()
	d := must[Attr](t)(fs.Mkdir(RootIno, "d", 0o755, me))
	other := must[Attr](t)(fs.Create(d.Ino, "other", 0o644, me))

	gets := func() int {
		n := 0
		for _, op := range st.take() {
			if op[:4] == "get " {
				n++
			}
		}
		return n
	}
	_, err := fs.Lookup(d.Ino, "new")
	wantErr(t, err, syscall.ENOENT)
	gets()
	must[Attr](t)(fs.Create(d.Ino, "new", 0o644, me))
	if n := gets(); n != 1 { // only newIno's check of the inode id
		t.Fatalf("create after lookup read %d objects, want 1", n)
	}

	// Each way a name can appear between the lookup and the create.
	for _, add := range []struct {
		name string
		do   func(name string) error
	}{
		{"create", func(n string) error { _, err := fs.Create(d.Ino, n, 0o644, me); return err }},
		{"mkdir", func(n string) error { _, err := fs.Mkdir(d.Ino, n, 0o755, me); return err }},
		{"symlink", func(n string) error { _, err := fs.Symlink(d.Ino, n, "t", me); return err }},
		{"link", func(n string) error { _, err := fs.Link(other.Ino, d.Ino, n); return err }},
		{"rename", func(n string) error {
			if _, err := fs.Create(d.Ino, n+"-src", 0o644, me); err != nil {
				return err
			}
			return fs.Rename(d.Ino, n+"-src", d.Ino, n, 0)
		}},
	} {
		name := "x-" + add.name
		_, err := fs.Lookup(d.Ino, name)
		wantErr(t, err, syscall.ENOENT)
		if err := add.do(name); err != nil {
			t.Fatalf("%s: %v", add.name, err)
		}
		_, err = fs.Create(d.Ino, name, 0o644, me)
		wantErr(t, err, syscall.EEXIST)
	}
}

func (p *putLog) GetChunk(f, i uint64, limit int) ([]byte, error) {
	p.log("get", fmt.Sprintf("chunk %d", i))
	return p.Storage.GetChunk(f, i, limit)
}

// TestReadAhead: a sequential reader has the next chunks loaded for it in
// the background, so it reads each chunk from disk once; random reads load
// nothing extra; read-ahead never takes a slot holding unsaved content.
func TestReadAhead(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 4096)
	const chunks = 20
	cs := int64(fs.ChunkSize())
	f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
	want := make([]byte, chunks*cs)
	for i := range want {
		want[i] = byte(i * 7 / 3)
	}
	must[int](t)(fs.Write(f.Ino, want, 0)) // whole chunks: none stays in a slot
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs = unlockT(t, st)
	defer fs.Close()
	loaded := func(what string, idx ...int) {
		t.Helper()
		fs.readAheads.Wait()
		got := slices.DeleteFunc(st.take(), func(op string) bool { return op[:10] != "get chunk " })
		var want []string
		for _, i := range idx {
			want = append(want, fmt.Sprintf("get chunk %d", i))
		}
		if !sameSet(got, want) {
			t.Fatalf("%s loaded %q, want %q", what, got, want)
		}
	}
	read := func(off, n int64) {
		t.Helper()
		got := make([]byte, n)
		if _, err := fs.Read(f.Ino, got, off); err != nil || !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("read %d bytes at %d: %v, or wrong bytes", n, off, err)
		}
	}

	// Unsaved content in chunk 18, in the slot that chunk 2 would take.
	copy(want[18*cs+10:], "unsaved")
	must[int](t)(fs.Write(f.Ino, []byte("unsaved"), 18*cs+10))
	loaded("a write into chunk 18", 18)
	read(0, cs/2)
	loaded("reading the start", 0, 1) // chunk 2's slot is taken
	read(cs/2, 3*cs-cs/2)
	loaded("reading on", 2, 3, 4)
	read(3*cs, 3*cs) // chunk 5 is loaded by read-ahead or by the read, not both
	loaded("reading chunks 3 to 5", 5, 6, 7)
	read(6*cs, (chunks-6)*cs)
	loaded("reading to the end", 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19)

	// Random reads: chunk 4 again, then 1, then 5 (slots are dropped once
	// read to their end).
	read(4*cs+100, 100)
	read(cs+100, 100)
	read(5*cs+100, 100)
	loaded("random reads", 1, 4, 5)
}

// TestChunkStoredOnceWhenWrittenOutOfOrder: the kernel's write-back may
// send a chunk's tail before its head. The chunk is stored once, when both
// are in; a chunk rewritten in place is still stored when the writer
// reaches its end.
func TestChunkStoredOnceWhenWrittenOutOfOrder(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 4096)
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs := unlockT(t, st)
	defer fs.Close()
	cs := int64(fs.ChunkSize())
	f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
	want := bytes.Repeat([]byte("out of order "), int(3*cs)/13+1)[:3*cs]
	chunkWrites := func() []string {
		return slices.DeleteFunc(st.writes(), func(op string) bool { return !strings.Contains(op, " chunk ") })
	}
	// Chunks 1 and 2 in pieces: 1's tail, 2's tail, 1's head, 2's head.
	for _, r := range [][2]int64{{cs + 1000, 2 * cs}, {2*cs + 10, 3 * cs}, {cs, cs + 1000}, {2 * cs, 2*cs + 10}} {
		must[int](t)(fs.Write(f.Ino, want[r[0]:r[1]], r[0]))
	}
	if got, want := chunkWrites(), []string{"new chunk 1", "new chunk 2"}; !sameSet(got, want) {
		t.Fatalf("writing chunks 1 and 2 in pieces stored %q, want %q", got, want)
	}
	must[int](t)(fs.Write(f.Ino, want[:cs], 0))
	if err := fs.Flush(f.Ino); err != nil {
		t.Fatal(err)
	}
	if got, want := chunkWrites(), []string{"new chunk 0"}; !sameSet(got, want) {
		t.Fatalf("the rest stored %q, want %q", got, want)
	}
	if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
		t.Fatal("read back wrong bytes")
	}

	// In place: a write ending at the chunk's end stores it at once.
	must[int](t)(fs.Write(f.Ino, []byte("tail"), 2*cs-4))
	if got, want := chunkWrites(), []string{"put chunk 1"}; !sameSet(got, want) {
		t.Fatalf("rewriting chunk 1's tail stored %q, want %q", got, want)
	}
}

// ordered returns the ops recorded so far in the order they happened.
func (p *putLog) ordered() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := p.ops
	p.ops = nil
	return ops
}

// TestFlushBatchOrder: a sync stores the inodes of all new files before
// any of their entries, neither in creation order, so that the objects of
// one file do not come out back to back.
func TestFlushBatchOrder(t *testing.T) {
	dir := newTestDir(t, XChaCha20Poly1305, 0)
	st := &putLog{Storage: must[*storage.Dir](t)(storage.OpenDir(dir))}
	fs := unlockT(t, st)
	defer fs.Close()
	var inodes, entries []string
	for i := range 20 {
		name := fmt.Sprint("f", i)
		a := must[Attr](t)(fs.Create(RootIno, name, 0o644, me))
		must[int](t)(fs.Write(a.Ino, []byte(name), 0))
		inodes = append(inodes, "new "+inodeName(a.Ino))
		entries = append(entries, "put "+fs.entryName(RootIno, fs.keys.names.entryTag(RootIno, name)))
	}
	st.ordered()
	must0(t, fs.Sync())
	var gotInodes, gotEntries []string
	for _, op := range st.ordered() {
		switch {
		case slices.Contains(inodes, op):
			if len(gotEntries) > 0 {
				t.Fatalf("inode %s stored after an entry", op)
			}
			gotInodes = append(gotInodes, op)
		case slices.Contains(entries, op):
			gotEntries = append(gotEntries, op)
		}
	}
	if len(gotInodes) != 20 || len(gotEntries) != 20 {
		t.Fatalf("%d inodes and %d entries stored, want 20 each", len(gotInodes), len(gotEntries))
	}
	if slices.Equal(gotInodes, inodes) || slices.Equal(gotEntries, entries) {
		t.Fatal("stored in creation order") // 1 in 20! by chance
	}
}
