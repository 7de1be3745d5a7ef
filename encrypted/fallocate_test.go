package encrypted

import (
	"bytes"
	"syscall"
	"testing"
)

// TestFallocate: each supported mode, checked by content, size, blocks and
// the chunk objects on disk; unsupported modes fail.
func TestFallocate(t *testing.T) {
	const cs = 4096
	fs, dir := newTestFS(t, XChaCha20Poly1305, cs)
	defer fs.Close()
	written := func(name string) (Attr, []byte) {
		f := must[Attr](t)(fs.Create(RootIno, name, 0o644, me))
		data := bytes.Repeat([]byte("x"), 5*cs)
		must[int](t)(fs.Write(f.Ino, data, 0))
		must0(t, fs.Flush(f.Ino))
		return f, data
	}

	// Punch a hole: whole chunk 2 goes, chunks 1 and 3 are zeroed in part.
	f, want := written("punch")
	must0(t, fs.Fallocate(f.Ino, FallocPunchHole|FallocKeepSize, cs+100, 2*cs))
	clear(want[cs+100 : 3*cs+100])
	if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
		t.Fatal("punched file reads wrong")
	}
	a := must[Attr](t)(fs.GetAttr(f.Ino))
	if a.Size != 5*cs || a.Blocks != 4*cs/512 || countChunks(t, dir, f.Ino) != 4 {
		t.Fatalf("after the punch: size %d, blocks %d, %d chunks", a.Size, a.Blocks, countChunks(t, dir, f.Ino))
	}
	if d, _ := fs.Seek(f.Ino, 2*cs, SeekHole); d != 2*cs {
		t.Fatalf("the punched chunk is not a hole: %d", d)
	}

	// A small punch inside one chunk.
	must0(t, fs.Fallocate(f.Ino, FallocPunchHole|FallocKeepSize, 10, 20))
	clear(want[10:30])
	if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
		t.Fatal("a punch inside one chunk reads wrong")
	}

	// Zero a range past the end: zeros, and the size grows.
	g, gwant := written("zero")
	must0(t, fs.Fallocate(g.Ino, FallocZeroRange, 4*cs, 2*cs))
	gwant = append(gwant[:4*cs], make([]byte, 2*cs)...)
	if got := readAll(t, fs, g.Ino); !bytes.Equal(got, gwant) {
		t.Fatalf("zeroed range reads wrong (%d bytes)", len(got))
	}

	// Reserve: mode 0 extends the size with stored zeros; KEEP_SIZE
	// stores them past the end without changing it.
	r := must[Attr](t)(fs.Create(RootIno, "reserve", 0o644, me))
	must[int](t)(fs.Write(r.Ino, []byte("small"), 0))
	must0(t, fs.Fallocate(r.Ino, 0, 0, 3*cs))
	a = must[Attr](t)(fs.GetAttr(r.Ino))
	if got := readAll(t, fs, r.Ino); a.Size != 3*cs || a.Blocks != 3*cs/512 || !bytes.Equal(got, append([]byte("small"), make([]byte, 3*cs-5)...)) {
		t.Fatalf("reserved: size %d, blocks %d", a.Size, a.Blocks)
	}
	must0(t, fs.Fallocate(r.Ino, FallocKeepSize, 3*cs, 2*cs))
	if a = must[Attr](t)(fs.GetAttr(r.Ino)); a.Size != 3*cs || countChunks(t, dir, r.Ino) != 5 {
		t.Fatalf("keep-size: size %d, %d chunks", a.Size, countChunks(t, dir, r.Ino))
	}

	for _, mode := range []uint32{FallocPunchHole, 0x08, 0x20, 0x40} { // punch without keep-size, collapse, insert, unshare
		wantErr(t, fs.Fallocate(r.Ino, mode, 0, cs), syscall.EOPNOTSUPP)
	}
	wantErr(t, fs.Fallocate(r.Ino, 0, 0, 0), syscall.EINVAL)

	// All of it survives a reopen.
	fs2 := reopen(t, fs, dir)
	fs = fs2
	if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
		t.Fatal("punched file after a reopen reads wrong")
	}
}
