package encrypted

import (
	"bytes"
	"testing"
)

// TestCopyRange: a range copied between files, across chunk boundaries,
// into the middle of another file; short at the end of the source.
func TestCopyRange(t *testing.T) {
	const cs = 4096
	fs, _ := newTestFS(t, AES256GCM, cs)
	defer fs.Close()
	src := must[Attr](t)(fs.Create(RootIno, "src", 0o644, me))
	dst := must[Attr](t)(fs.Create(RootIno, "dst", 0o644, me))
	data := make([]byte, 3*cs+123)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	must[int](t)(fs.Write(src.Ino, data, 0))
	must[int](t)(fs.Write(dst.Ino, bytes.Repeat([]byte("d"), 2*cs), 0))
	n := must[uint64](t)(fs.CopyRange(src.Ino, 100, dst.Ino, cs-7, 2*cs))
	if n != 2*cs {
		t.Fatalf("copied %d", n)
	}
	want := append(bytes.Repeat([]byte("d"), cs-7), data[100:100+2*cs]...)
	if got := readAll(t, fs, dst.Ino); !bytes.Equal(got, want) {
		t.Fatal("destination reads wrong")
	}
	if n := must[uint64](t)(fs.CopyRange(src.Ino, 3*cs, dst.Ino, 0, cs)); n != 123 {
		t.Fatalf("copy past the end of the source: %d bytes, want 123", n)
	}
}
