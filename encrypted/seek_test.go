package encrypted

import (
	"bytes"
	"syscall"
	"testing"
)

// TestSeekDataHole: SEEK_DATA and SEEK_HOLE report stored, inline and
// unsaved chunks as data, the rest below the size as holes, the end of
// file as a hole, and ENXIO past it.
func TestSeekDataHole(t *testing.T) {
	fs, _ := newTestFS(t, XChaCha20Poly1305, 4096)
	defer fs.Close()
	const cs = 4096
	f := must[Attr](t)(fs.Create(RootIno, "sparse", 0o644, me))
	must[int](t)(fs.Write(f.Ino, bytes.Repeat([]byte("a"), cs), 2*cs)) // chunk 2, stored whole
	must[int](t)(fs.Write(f.Ino, bytes.Repeat([]byte("b"), cs), 3*cs)) // chunk 3, stored whole
	must[int](t)(fs.Write(f.Ino, []byte("c"), 6*cs+10))                // chunk 6, unsaved in its slot
	must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Size: ptr(uint64(9 * cs))}))
	for _, c := range []struct {
		off    uint64
		whence int
		want   uint64
		err    error
	}{
		{0, SeekData, 2 * cs, nil},
		{2*cs + 5, SeekData, 2*cs + 5, nil},
		{4 * cs, SeekData, 6 * cs, nil},
		{7 * cs, SeekData, 0, syscall.ENXIO},
		{0, SeekHole, 0, nil},
		{2 * cs, SeekHole, 4 * cs, nil},
		{6*cs + 1, SeekHole, 7 * cs, nil},
		{8 * cs, SeekHole, 8 * cs, nil},
		{9 * cs, SeekHole, 0, syscall.ENXIO},
		{9 * cs, SeekData, 0, syscall.ENXIO},
	} {
		got, err := fs.Seek(f.Ino, c.off, c.whence)
		if c.err != nil {
			wantErr(t, err, c.err)
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("seek(%d, %d) = %d %v, want %d", c.off, c.whence, got, err, c.want)
		}
	}
	small := must[Attr](t)(fs.Create(RootIno, "small", 0o644, me))
	must[int](t)(fs.Write(small.Ino, []byte("inline"), 0))
	must0(t, fs.Flush(small.Ino))
	if d, err := fs.Seek(small.Ino, 0, SeekData); d != 0 || err != nil {
		t.Fatalf("inline data at %d, %v", d, err)
	}
	if h, err := fs.Seek(small.Ino, 0, SeekHole); h != 6 || err != nil {
		t.Fatalf("hole of an inline file at %d, %v; want its end, 6", h, err)
	}
	_, err := fs.Seek(small.Ino, 0, 0)
	wantErr(t, err, syscall.EINVAL)
}

func ptr[T any](v T) *T { return &v }
