package storage

import (
	"fmt"
	"os"
	"testing"
)

func BenchmarkPut(b *testing.B) {
	for _, root := range []string{"/dev/shm", ""} {
		b.Run(fmt.Sprint("root=", root), func(b *testing.B) {
			dir := b.TempDir()
			if root != "" {
				dir = root + "/putbench"
			}
			if root != "" {
				os.MkdirAll(dir, 0o700)
				defer os.RemoveAll(dir)
			}
			d, err := OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 200)
			i := 0
			for b.Loop() {
				if err := d.Put(fmt.Sprintf("i/%02x/%016x", i%256, i), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
