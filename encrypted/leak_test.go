package encrypted

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPlaintextOnDisk writes known markers into every kind of
// plaintext the store holds, then scans every byte and every name in the
// data directory for them.
func TestNoPlaintextOnDisk(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fsys, dir := newTestFS(t, c, 4096)
		markers := map[string]string{
			"file name":      "MarkerFileName",
			"dir name":       "MarkerDirName",
			"content":        "MarkerContent",
			"symlink target": "MarkerLinkTarget",
			"xattr name":     "user.MarkerXattrName",
			"xattr value":    "MarkerXattrValue",
			"long name":      strings.Repeat("MarkerLong", 25),
			"small content":  "MarkerSmallContent", // kept inside the inode
		}
		d := must[Attr](t)(fsys.Mkdir(RootIno, markers["dir name"], 0o755, me))
		f := must[Attr](t)(fsys.Create(d.Ino, markers["file name"], 0o644, me))
		content := bytes.Repeat([]byte(markers["content"]), 1000) // spans chunks
		must[int](t)(fsys.Write(f.Ino, content, 0))
		must[Attr](t)(fsys.Symlink(RootIno, "l", markers["symlink target"], me))
		must[Attr](t)(fsys.Create(RootIno, markers["long name"], 0o644, me))
		small := must[Attr](t)(fsys.Create(RootIno, "small", 0o644, me))
		must[int](t)(fsys.Write(small.Ino, []byte(markers["small content"]), 0))
		must[error](t)(nil, fsys.SetXattr(f.Ino, markers["xattr name"], []byte(markers["xattr value"]), 0))
		if err := fsys.Close(); err != nil {
			t.Fatal(err)
		}

		files := 0
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if len(e.Name()) > 255 {
				t.Errorf("on-disk name longer than 255 bytes: %s", rel)
			}
			if strings.ToLower(rel) != rel {
				t.Errorf("on-disk name not lowercase: %s", rel)
			}
			for what, m := range markers {
				if strings.Contains(strings.ToLower(rel), strings.ToLower(m[:10])) {
					t.Errorf("%s appears in on-disk path %s", what, rel)
				}
			}
			if e.IsDir() {
				return nil
			}
			files++
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for what, m := range markers {
				if bytes.Contains(b, []byte(m[:10])) {
					t.Errorf("%s appears in %s", what, rel)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// header, 6 inodes (root, dir, file, link, long, small with its
		// content inside), 5 entries, 4 chunks
		if files != 16 {
			t.Errorf("scanned %d files, want 16", files)
		}
	})
}
