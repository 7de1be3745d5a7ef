package encrypted

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentWrites has many goroutines write interleaved pieces of
// one file (different chunks and the same chunks) and create files in one
// directory, then checks every byte and every name. Run it with -race.
func TestConcurrentWrites(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 4096)
		f := must[Attr](t)(fs.Create(RootIno, "shared", 0o644, me))
		const workers, pieces, piece = 8, 16, 1000
		var wg sync.WaitGroup
		errs := make(chan error, workers*pieces*2)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range pieces {
					// Piece p of worker w sits at slot p*workers+w: neighbours
					// share chunks, so read-modify-write must serialize per chunk.
					off := int64((p*workers + w) * piece)
					if _, err := fs.Write(f.Ino, bytes.Repeat([]byte{byte('a' + w)}, piece), off); err != nil {
						errs <- err
					}
					if _, err := fs.Create(RootIno, fmt.Sprintf("w%d-%d", w, p), 0o644, me); err != nil {
						errs <- err
					}
					if _, err := fs.Read(f.Ino, make([]byte, 5000), off); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		fs = reopen(t, fs, dir)
		defer fs.Close()
		got := readAll(t, fs, f.Ino)
		if len(got) != workers*pieces*piece {
			t.Fatalf("size %d", len(got))
		}
		for slot := range workers * pieces {
			want := bytes.Repeat([]byte{byte('a' + slot%workers)}, piece)
			if !bytes.Equal(got[slot*piece:(slot+1)*piece], want) {
				t.Fatalf("slot %d lost its write", slot)
			}
		}
		if n := len(listNames(t, fs, RootIno)); n != workers*pieces+1 {
			t.Fatalf("%d names, want %d", n, workers*pieces+1)
		}
	})
}
