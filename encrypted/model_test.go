package encrypted

import (
	"bytes"
	"maps"
	"os"
	"slices"
	"syscall"
	"testing"

	"pgregory.net/rapid"
)

// mnode is the in-memory reference model of a file or directory.
type mnode struct {
	ino      Ino
	dir      bool
	data     []byte
	nlink    int
	parent   *mnode
	children map[string]*mnode
}

type model struct {
	root *mnode
}

func (m *model) dirs() []*mnode {
	var out []*mnode
	var walk func(*mnode)
	walk = func(n *mnode) {
		out = append(out, n)
		for _, k := range slices.Sorted(maps.Keys(n.children)) {
			if c := n.children[k]; c.dir {
				walk(c)
			}
		}
	}
	walk(m.root)
	return out
}

func (m *model) files() []*mnode {
	seen := map[*mnode]bool{}
	var out []*mnode
	for _, d := range m.dirs() {
		for _, k := range slices.Sorted(maps.Keys(d.children)) {
			if c := d.children[k]; !c.dir && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

func isAncestor(a, d *mnode) bool {
	for ; d != nil; d = d.parent {
		if d == a {
			return true
		}
	}
	return false
}

func subdirs(d *mnode) int {
	n := 0
	for _, c := range d.children {
		if c.dir {
			n++
		}
	}
	return n
}

var modelNames = []string{"a", "b", "c", "d", "e"}

// TestModel runs random operation sequences against the store and a
// reference model, comparing every result and errno, across reopens.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := rapid.SampledFrom(ciphers).Draw(rt, "cipher")
		dir, err := os.MkdirTemp("", "rencfs-model-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		fs, err := initDir(dir, testPassword, Options{Cipher: c, ChunkSize: 4096, KDF: testKDF})
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { fs.Close() }()
		m := &model{root: &mnode{ino: RootIno, dir: true, children: map[string]*mnode{}}}

		check := func(op string, err error, want syscall.Errno) {
			rt.Helper()
			if Errno(err) != want {
				rt.Fatalf("%s: error %v, model wants errno %d (%v)", op, err, want, want)
			}
		}
		pickDir := func(label string) *mnode { return rapid.SampledFrom(m.dirs()).Draw(rt, label) }
		name := func(label string) string { return rapid.SampledFrom(modelNames).Draw(rt, label) }

		rt.Repeat(map[string]func(*rapid.T){
			"create": func(rt *rapid.T) {
				d, nm := pickDir("dir"), name("name")
				a, err := fs.Create(d.ino, nm, 0o644, me)
				if d.children[nm] != nil {
					check("create", err, syscall.EEXIST)
					return
				}
				check("create", err, 0)
				d.children[nm] = &mnode{ino: a.Ino, nlink: 1}
			},
			"mkdir": func(rt *rapid.T) {
				d, nm := pickDir("dir"), name("name")
				a, err := fs.Mkdir(d.ino, nm, 0o755, me)
				if d.children[nm] != nil {
					check("mkdir", err, syscall.EEXIST)
					return
				}
				check("mkdir", err, 0)
				d.children[nm] = &mnode{ino: a.Ino, dir: true, parent: d, children: map[string]*mnode{}}
			},
			"write": func(rt *rapid.T) {
				files := m.files()
				if len(files) == 0 {
					rt.Skip("no files")
				}
				f := rapid.SampledFrom(files).Draw(rt, "file")
				off := rapid.IntRange(0, 20000).Draw(rt, "off")
				data := rapid.SliceOfN(rapid.Byte(), 1, 9000).Draw(rt, "data")
				n, err := fs.Write(f.ino, data, int64(off))
				check("write", err, 0)
				if n != len(data) {
					rt.Fatalf("wrote %d of %d", n, len(data))
				}
				if end := off + len(data); end > len(f.data) {
					f.data = append(f.data, make([]byte, end-len(f.data))...)
				}
				copy(f.data[off:], data)
			},
			"truncate": func(rt *rapid.T) {
				files := m.files()
				if len(files) == 0 {
					rt.Skip("no files")
				}
				f := rapid.SampledFrom(files).Draw(rt, "file")
				size := rapid.IntRange(0, 20000).Draw(rt, "size")
				s := uint64(size)
				_, err := fs.SetAttr(f.ino, SetAttr{Size: &s})
				check("truncate", err, 0)
				if size < len(f.data) {
					f.data = f.data[:size]
				} else {
					f.data = append(f.data, make([]byte, size-len(f.data))...)
				}
			},
			"read": func(rt *rapid.T) {
				files := m.files()
				if len(files) == 0 {
					rt.Skip("no files")
				}
				f := rapid.SampledFrom(files).Draw(rt, "file")
				off := rapid.IntRange(0, len(f.data)+10).Draw(rt, "off")
				buf := make([]byte, rapid.IntRange(0, 10000).Draw(rt, "len"))
				n, err := fs.Read(f.ino, buf, int64(off))
				check("read", err, 0)
				want := []byte{}
				if off < len(f.data) {
					want = f.data[off:min(len(f.data), off+len(buf))]
				}
				if !bytes.Equal(buf[:n], want) {
					rt.Fatalf("read %d bytes at %d: content differs from model (%d bytes)", n, off, len(want))
				}
			},
			"unlink": func(rt *rapid.T) {
				d, nm := pickDir("dir"), name("name")
				err := fs.Unlink(d.ino, nm)
				c := d.children[nm]
				switch {
				case c == nil:
					check("unlink", err, syscall.ENOENT)
				case c.dir:
					check("unlink", err, syscall.EISDIR)
				default:
					check("unlink", err, 0)
					delete(d.children, nm)
					c.nlink--
				}
			},
			"rmdir": func(rt *rapid.T) {
				d, nm := pickDir("dir"), name("name")
				err := fs.Rmdir(d.ino, nm)
				c := d.children[nm]
				switch {
				case c == nil:
					check("rmdir", err, syscall.ENOENT)
				case !c.dir:
					check("rmdir", err, syscall.ENOTDIR)
				case len(c.children) > 0:
					check("rmdir", err, syscall.ENOTEMPTY)
				default:
					check("rmdir", err, 0)
					delete(d.children, nm)
				}
			},
			"link": func(rt *rapid.T) {
				files := m.files()
				if len(files) == 0 {
					rt.Skip("no files")
				}
				f := rapid.SampledFrom(files).Draw(rt, "file")
				d, nm := pickDir("dir"), name("name")
				_, err := fs.Link(f.ino, d.ino, nm)
				if d.children[nm] != nil {
					check("link", err, syscall.EEXIST)
					return
				}
				check("link", err, 0)
				d.children[nm] = f
				f.nlink++
			},
			"rename": func(rt *rapid.T) {
				sd, sn := pickDir("srcdir"), name("srcname")
				dd, dn := pickDir("dstdir"), name("dstname")
				err := fs.Rename(sd.ino, sn, dd.ino, dn, 0)
				s, d := sd.children[sn], dd.children[dn]
				switch {
				case s == nil:
					check("rename", err, syscall.ENOENT)
				case s == d:
					check("rename", err, 0)
				case d != nil && s.dir && !d.dir:
					check("rename", err, syscall.ENOTDIR)
				case d != nil && !s.dir && d.dir:
					check("rename", err, syscall.EISDIR)
				case d != nil && d.dir && len(d.children) > 0:
					check("rename", err, syscall.ENOTEMPTY)
				case s.dir && isAncestor(s, dd):
					check("rename", err, syscall.EINVAL)
				default:
					check("rename", err, 0)
					delete(sd.children, sn)
					if d != nil && !d.dir {
						d.nlink--
					}
					dd.children[dn] = s
					if s.dir {
						s.parent = dd
					}
				}
			},
			"readdir": func(rt *rapid.T) {
				d := pickDir("dir")
				got := map[string]Dirent{}
				for e, err := range fs.ReadDir(d.ino) {
					check("readdir", err, 0)
					got[e.Name] = e
				}
				if len(got) != len(d.children) {
					rt.Fatalf("readdir: %d entries, model has %d", len(got), len(d.children))
				}
				for nm, c := range d.children {
					e, ok := got[nm]
					wantType := uint32(syscall.S_IFREG)
					if c.dir {
						wantType = syscall.S_IFDIR
					}
					if !ok || e.Ino != c.ino || e.Type != wantType {
						rt.Fatalf("readdir entry %q: %+v, model ino %d", nm, e, c.ino)
					}
				}
			},
			"stat": func(rt *rapid.T) {
				d, nm := pickDir("dir"), name("name")
				a, err := fs.Lookup(d.ino, nm)
				c := d.children[nm]
				if c == nil {
					check("lookup", err, syscall.ENOENT)
					return
				}
				check("lookup", err, 0)
				wantNlink, wantSize := uint32(c.nlink), uint64(len(c.data))
				if c.dir {
					wantNlink, wantSize = uint32(2+subdirs(c)), 4096
				}
				if a.Ino != c.ino || a.Nlink != wantNlink || a.Size != wantSize {
					rt.Fatalf("stat %q: ino %d nlink %d size %d; model ino %d nlink %d size %d",
						nm, a.Ino, a.Nlink, a.Size, c.ino, wantNlink, wantSize)
				}
			},
			"reopen": func(rt *rapid.T) {
				if err := fs.Close(); err != nil {
					rt.Fatal(err)
				}
				if fs, err = openDir(dir, testPassword); err != nil {
					rt.Fatal(err)
				}
			},
		})
	})
}
