package encrypted

import (
	"bytes"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

var me = Owner{UID: 1000, GID: 1000}

func TestInitOpen(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		if fs.Cipher() != c || fs.ChunkSize() != DefaultChunkSize {
			t.Fatalf("cipher %v chunk %d", fs.Cipher(), fs.ChunkSize())
		}
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if fs.Cipher() != c {
			t.Fatalf("reopened cipher %v, want %v", fs.Cipher(), c)
		}
		a := must[Attr](t)(fs.GetAttr(RootIno))
		if !a.IsDir() || a.Mode&0o777 != 0o755 || a.Nlink != 2 {
			t.Fatalf("root attr %+v", a)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	fs.Close()
	_, err := openDir(dir, []byte("wrong"))
	wantErr(t, err, ErrWrongPassword)
	_, err = openDir(t.TempDir(), testPassword)
	wantErr(t, err, ErrNotStore)
	_, err = initDir(dir, testPassword, Options{KDF: testKDF})
	wantErr(t, err, ErrNotEmpty)
	_, err = openDir(dir+"/missing", testPassword)
	wantErr(t, err, syscall.ENOENT)
	_, err = initDir(t.TempDir(), testPassword, Options{KDF: testKDF, ChunkSize: 1000})
	if err == nil {
		t.Fatal("chunk size 1000 accepted")
	}
}

func TestFileRoundTrip(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 4096)
		f := must[Attr](t)(fs.Create(RootIno, "file", 0o640, me))
		if f.Mode != syscall.S_IFREG|0o640 || f.UID != 1000 || f.Nlink != 1 || f.Size != 0 {
			t.Fatalf("created %+v", f)
		}
		// Three chunks and a bit, written unaligned in odd pieces.
		want := make([]byte, 3*4096+100)
		for i := range want {
			want[i] = byte(i * 7)
		}
		for off := 0; off < len(want); off += 1000 {
			end := min(off+1000, len(want))
			if n, err := fs.Write(f.Ino, want[off:end], int64(off)); err != nil || n != end-off {
				t.Fatalf("write at %d: %d, %v", off, n, err)
			}
		}
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatal("read back differs")
		}
		// A read straddling chunks, and one past the end.
		buf := make([]byte, 300)
		if n, _ := fs.Read(f.Ino, buf, 4000); n != 300 || !bytes.Equal(buf, want[4000:4300]) {
			t.Fatal("straddling read differs")
		}
		if n, err := fs.Read(f.Ino, buf, int64(len(want))); n != 0 || err != nil {
			t.Fatalf("read at EOF: %d, %v", n, err)
		}
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatal("read back after reopen differs")
		}
	})
}

func TestSparseAndTruncate(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 4096)
		f := must[Attr](t)(fs.Create(RootIno, "sparse", 0o600, me))
		must[int](t)(fs.Write(f.Ino, []byte("head"), 0))
		must[int](t)(fs.Write(f.Ino, []byte("tail"), 10*4096+5))
		want := make([]byte, 10*4096+9)
		copy(want, "head")
		copy(want[10*4096+5:], "tail")
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatal("sparse read differs")
		}
		a := must[Attr](t)(fs.GetAttr(f.Ino))
		if a.Blocks*512 > 3*4096 {
			t.Fatalf("sparse file uses %d blocks", a.Blocks)
		}
		// Shrink into the middle of the first chunk, then grow: the
		// cut-off bytes must come back as zeros.
		size := uint64(2)
		must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Size: &size}))
		size = 5000
		must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Size: &size}))
		want = make([]byte, 5000)
		copy(want, "he")
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatalf("after truncate: %q", got[:8])
		}
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if got := readAll(t, fs, f.Ino); !bytes.Equal(got, want) {
			t.Fatal("after reopen differs")
		}
		// No chunk object is left: the two bytes of chunk 0 live in the inode.
		if n := countChunks(t, dir, f.Ino); n != 0 {
			t.Fatalf("%d chunk files left, want 0", n)
		}
		// Truncating a directory fails.
		_, err := fs.SetAttr(RootIno, SetAttr{Size: &size})
		wantErr(t, err, syscall.EISDIR)
	})
}

func TestSetAttr(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
		mode, uid, gid := uint32(0o4711), uint32(7), uint32(8)
		at := time.Unix(1_000_000_000, 123456789)
		mt := time.Unix(2_000_000_000, 987654321)
		before := time.Now()
		a := must[Attr](t)(fs.SetAttr(f.Ino, SetAttr{Mode: &mode, UID: &uid, GID: &gid, Atime: &at, Mtime: &mt}))
		check := func(a Attr) {
			t.Helper()
			if a.Mode != syscall.S_IFREG|0o4711 || a.UID != 7 || a.GID != 8 || !a.Atime.Equal(at) || !a.Mtime.Equal(mt) {
				t.Fatalf("attr %+v", a)
			}
			if a.Ctime.Before(before.Add(-time.Second)) {
				t.Fatalf("ctime %v not updated", a.Ctime)
			}
		}
		check(a)
		fs = reopen(t, fs, dir)
		defer fs.Close()
		check(must[Attr](t)(fs.GetAttr(f.Ino)))
	})
}

func TestDirectories(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		d := must[Attr](t)(fs.Mkdir(RootIno, "d", 0o700, me))
		if !d.IsDir() || d.Nlink != 2 {
			t.Fatalf("mkdir %+v", d)
		}
		if a := must[Attr](t)(fs.GetAttr(RootIno)); a.Nlink != 3 {
			t.Fatalf("root nlink %d after mkdir, want 3", a.Nlink)
		}
		_, err := fs.Mkdir(RootIno, "d", 0o700, me)
		wantErr(t, err, syscall.EEXIST)
		_, err = fs.Create(RootIno, "d", 0o700, me)
		wantErr(t, err, syscall.EEXIST)
		f := must[Attr](t)(fs.Create(d.Ino, "inner", 0o600, me))
		_, err = fs.Create(f.Ino, "x", 0o600, me)
		wantErr(t, err, syscall.ENOTDIR)
		wantErr(t, fs.Rmdir(RootIno, "d"), syscall.ENOTEMPTY)
		wantErr(t, fs.Unlink(RootIno, "d"), syscall.EISDIR)
		wantErr(t, fs.Rmdir(d.Ino, "inner"), syscall.ENOTDIR)
		_, err = fs.Lookup(RootIno, "nope")
		wantErr(t, err, syscall.ENOENT)
		_, err = fs.Lookup(RootIno, string(make([]byte, 256)))
		wantErr(t, err, syscall.ENAMETOOLONG)
		long := string(bytes.Repeat([]byte("é"), 127)) // 254 bytes
		must[Attr](t)(fs.Create(RootIno, long, 0o600, me))

		fs = reopen(t, fs, dir)
		defer fs.Close()
		if got := must[Attr](t)(fs.Lookup(RootIno, "d")); got.Ino != d.Ino {
			t.Fatalf("lookup d: %d, want %d", got.Ino, d.Ino)
		}
		names := listNames(t, fs, RootIno)
		if len(names) != 2 || names["d"].Ino != d.Ino || names["d"].Type != syscall.S_IFDIR || names[long].Type != syscall.S_IFREG {
			t.Fatalf("readdir %v", names)
		}
		if err := fs.Unlink(d.Ino, "inner"); err != nil {
			t.Fatal(err)
		}
		_, err = fs.GetAttr(f.Ino)
		wantErr(t, err, syscall.ENOENT)
		if err := fs.Rmdir(RootIno, "d"); err != nil {
			t.Fatal(err)
		}
		if a := must[Attr](t)(fs.GetAttr(RootIno)); a.Nlink != 2 {
			t.Fatalf("root nlink %d after rmdir, want 2", a.Nlink)
		}
		wantErr(t, fs.Rmdir(RootIno, "d"), syscall.ENOENT)
	})
}

func TestSpecialFiles(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		s := must[Attr](t)(fs.Symlink(RootIno, "link", "../some/where", me))
		if s.Mode&syscall.S_IFMT != syscall.S_IFLNK || s.Size != 13 {
			t.Fatalf("symlink %+v", s)
		}
		fifo := must[Attr](t)(fs.Mknod(RootIno, "fifo", syscall.S_IFIFO|0o600, 0, me))
		sock := must[Attr](t)(fs.Mknod(RootIno, "sock", syscall.S_IFSOCK|0o600, 0, me))
		dev := must[Attr](t)(fs.Mknod(RootIno, "dev", syscall.S_IFCHR|0o600, 0x0103, me))
		_, err := fs.Readlink(fifo.Ino)
		wantErr(t, err, syscall.EINVAL)
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if got := must[string](t)(fs.Readlink(s.Ino)); got != "../some/where" {
			t.Fatalf("readlink %q", got)
		}
		for ino, want := range map[Ino]uint32{fifo.Ino: syscall.S_IFIFO, sock.Ino: syscall.S_IFSOCK, dev.Ino: syscall.S_IFCHR} {
			a := must[Attr](t)(fs.GetAttr(ino))
			if a.Mode&syscall.S_IFMT != want {
				t.Fatalf("mode %o, want type %o", a.Mode, want)
			}
		}
		if a := must[Attr](t)(fs.GetAttr(dev.Ino)); a.Rdev != 0x0103 {
			t.Fatalf("rdev %x", a.Rdev)
		}
		_, err = fs.Read(fifo.Ino, make([]byte, 1), 0)
		wantErr(t, err, syscall.EINVAL)
	})
}

func TestHardLinks(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		d := must[Attr](t)(fs.Mkdir(RootIno, "d", 0o755, me))
		f := must[Attr](t)(fs.Create(RootIno, "a", 0o644, me))
		must[int](t)(fs.Write(f.Ino, []byte("shared"), 0))
		l := must[Attr](t)(fs.Link(f.Ino, d.Ino, "b"))
		if l.Nlink != 2 || l.Ino != f.Ino {
			t.Fatalf("link %+v", l)
		}
		_, err := fs.Link(d.Ino, RootIno, "dirlink")
		wantErr(t, err, syscall.EPERM)
		_, err = fs.Link(f.Ino, d.Ino, "b")
		wantErr(t, err, syscall.EEXIST)
		fs = reopen(t, fs, dir)
		must[error](t)(nil, fs.Unlink(RootIno, "a"))
		b := must[Attr](t)(fs.Lookup(d.Ino, "b"))
		if b.Nlink != 1 || string(readAll(t, fs, b.Ino)) != "shared" {
			t.Fatalf("after unlink of one name: %+v", b)
		}
		must[error](t)(nil, fs.Unlink(d.Ino, "b"))
		if n := countChunks(t, dir, f.Ino); n != 0 {
			t.Fatalf("%d chunks left after last unlink", n)
		}
		fs.Close()
	})
}

func TestUnlinkWhileOpen(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	defer fs.Close()
	f := must[Attr](t)(fs.Create(RootIno, "tmp", 0o600, me))
	must[Attr](t)(fs.Open(f.Ino))
	must[int](t)(fs.Write(f.Ino, []byte("still here"), 0))
	must[error](t)(nil, fs.Unlink(RootIno, "tmp"))
	if got := readAll(t, fs, f.Ino); string(got) != "still here" {
		t.Fatalf("read after unlink: %q", got)
	}
	must[int](t)(fs.Write(f.Ino, []byte("!"), 10))
	must[error](t)(nil, fs.Release(f.Ino))
	_, err := fs.GetAttr(f.Ino)
	wantErr(t, err, syscall.ENOENT)
	if n := countChunks(t, dir, f.Ino); n != 0 {
		t.Fatalf("%d chunks left after release", n)
	}
}

func TestRename(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		a := must[Attr](t)(fs.Mkdir(RootIno, "a", 0o755, me))
		b := must[Attr](t)(fs.Mkdir(RootIno, "b", 0o755, me))
		sub := must[Attr](t)(fs.Mkdir(a.Ino, "sub", 0o755, me))
		f := must[Attr](t)(fs.Create(a.Ino, "f", 0o644, me))
		g := must[Attr](t)(fs.Create(b.Ino, "g", 0o644, me))
		must[int](t)(fs.Write(f.Ino, []byte("f content"), 0))

		// Within a directory.
		must[error](t)(nil, fs.Rename(a.Ino, "f", a.Ino, "f2", 0))
		// Across directories, replacing a file.
		must[error](t)(nil, fs.Rename(a.Ino, "f2", b.Ino, "g", 0))
		_, err := fs.GetAttr(g.Ino)
		wantErr(t, err, syscall.ENOENT) // the replaced file is gone
		if got := must[Attr](t)(fs.Lookup(b.Ino, "g")); got.Ino != f.Ino {
			t.Fatal("g is not the renamed file")
		}
		// A directory across, and its ".." with it.
		must[error](t)(nil, fs.Rename(a.Ino, "sub", b.Ino, "sub", 0))
		if na, nb := must[Attr](t)(fs.GetAttr(a.Ino)).Nlink, must[Attr](t)(fs.GetAttr(b.Ino)).Nlink; na != 2 || nb != 3 {
			t.Fatalf("nlink a=%d b=%d, want 2 and 3", na, nb)
		}
		// Into itself or a descendant: EINVAL.
		wantErr(t, fs.Rename(RootIno, "b", sub.Ino, "x", 0), syscall.EINVAL)
		wantErr(t, fs.Rename(RootIno, "b", b.Ino, "x", 0), syscall.EINVAL)
		// A directory over an empty one; over a non-empty one; file over dir.
		empty := must[Attr](t)(fs.Mkdir(RootIno, "empty", 0o755, me))
		wantErr(t, fs.Rename(RootIno, "a", RootIno, "b", 0), syscall.ENOTEMPTY)
		wantErr(t, fs.Rename(b.Ino, "g", RootIno, "empty", 0), syscall.EISDIR)
		wantErr(t, fs.Rename(RootIno, "empty", b.Ino, "g", 0), syscall.ENOTDIR)
		must[error](t)(nil, fs.Rename(RootIno, "a", RootIno, "empty", 0))
		_, err = fs.GetAttr(empty.Ino)
		wantErr(t, err, syscall.ENOENT)
		wantErr(t, fs.Rename(RootIno, "a", RootIno, "zz", 0), syscall.ENOENT)
		wantErr(t, fs.Rename(RootIno, "empty", RootIno, "b", RenameNoReplace), syscall.EEXIST)
		if n := must[Attr](t)(fs.GetAttr(RootIno)).Nlink; n != 4 {
			t.Fatalf("root nlink %d, want 4 (., .., empty, b)", n)
		}

		fs = reopen(t, fs, dir)
		defer fs.Close()
		root := listNames(t, fs, RootIno)
		if len(root) != 2 || root["empty"].Ino != a.Ino || root["b"].Ino != b.Ino {
			t.Fatalf("root lists %v", root)
		}
		inB := listNames(t, fs, b.Ino)
		if len(inB) != 2 || inB["g"].Ino != f.Ino || inB["sub"].Ino != sub.Ino {
			t.Fatalf("b lists %v", inB)
		}
		if got := readAll(t, fs, f.Ino); string(got) != "f content" {
			t.Fatalf("content %q", got)
		}
		// The moved directory's parent pointer survived: moving b into sub is a cycle.
		wantErr(t, fs.Rename(RootIno, "b", sub.Ino, "b", 0), syscall.EINVAL)
	})
}

func TestXattrs(t *testing.T) {
	forCiphers(t, func(t *testing.T, c Cipher) {
		fs, dir := newTestFS(t, c, 0)
		f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
		must[error](t)(nil, fs.SetXattr(f.Ino, "user.a", []byte("1"), 0))
		must[error](t)(nil, fs.SetXattr(f.Ino, "user.b", []byte{}, XattrCreate))
		wantErr(t, fs.SetXattr(f.Ino, "user.a", []byte("2"), XattrCreate), syscall.EEXIST)
		wantErr(t, fs.SetXattr(f.Ino, "user.c", []byte("2"), XattrReplace), syscall.ENODATA)
		wantErr(t, fs.SetXattr(f.Ino, "user.big", make([]byte, 70000), 0), syscall.E2BIG)
		must[error](t)(nil, fs.SetXattr(f.Ino, "user.a", []byte("22"), XattrReplace))
		must[error](t)(nil, fs.Flush(f.Ino))
		fs = reopen(t, fs, dir)
		defer fs.Close()
		if v := must[[]byte](t)(fs.GetXattr(f.Ino, "user.a")); string(v) != "22" {
			t.Fatalf("user.a = %q", v)
		}
		if l := must[[]string](t)(fs.ListXattr(f.Ino)); !slices.Equal(l, []string{"user.a", "user.b"}) {
			t.Fatalf("list %v", l)
		}
		must[error](t)(nil, fs.RemoveXattr(f.Ino, "user.a"))
		wantErr(t, fs.RemoveXattr(f.Ino, "user.a"), syscall.ENODATA)
		_, err := fs.GetXattr(f.Ino, "user.a")
		wantErr(t, err, syscall.ENODATA)
	})
}

func TestLargeDirectory(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	const n = 2000
	for i := range n {
		must[Attr](t)(fs.Create(RootIno, fmt.Sprintf("file-%05d", i), 0o644, me))
	}
	fs = reopen(t, fs, dir)
	defer fs.Close()
	if got := len(listNames(t, fs, RootIno)); got != n {
		t.Fatalf("readdir %d entries, want %d", got, n)
	}
	// The stream can stop early.
	count := 0
	for range fs.ReadDir(RootIno) {
		count++
		if count == 10 {
			break
		}
	}
	if count != 10 {
		t.Fatalf("stopped at %d", count)
	}
}

func TestStatfsAndErrno(t *testing.T) {
	fs, _ := newTestFS(t, XChaCha20Poly1305, 0)
	defer fs.Close()
	u := must[storageUsage](t)(fs.Usage())
	if u.Blocks == 0 || u.BlockSize == 0 {
		t.Fatalf("usage %+v", u)
	}
	if Errno(ErrCorrupt) != syscall.EIO || Errno(fmt.Errorf("x: %w", syscall.ENOENT)) != syscall.ENOENT || Errno(nil) != 0 {
		t.Fatal("Errno mapping")
	}
}

// TestSetgidDirectory: what is made in a setgid directory takes its
// group, and a subdirectory its setgid bit; elsewhere the maker's group.
func TestSetgidDirectory(t *testing.T) {
	fs, _ := newTestFS(t, XChaCha20Poly1305, 0)
	defer fs.Close()
	d := must[Attr](t)(fs.Mkdir(RootIno, "shared", 0o775, Owner{UID: 0, GID: 50}))
	mode := uint32(0o2775)
	must[Attr](t)(fs.SetAttr(d.Ino, SetAttr{Mode: &mode}))
	f := must[Attr](t)(fs.Create(d.Ino, "f", 0o644, me))
	sub := must[Attr](t)(fs.Mkdir(d.Ino, "sub", 0o755, me))
	n := must[Attr](t)(fs.Mknod(d.Ino, "fifo", syscall.S_IFIFO|0o644, 0, me))
	for name, a := range map[string]Attr{"file": f, "subdir": sub, "fifo": n} {
		if a.GID != 50 || a.UID != me.UID {
			t.Errorf("%s: uid %d gid %d, want %d and the directory's 50", name, a.UID, a.GID, me.UID)
		}
	}
	if sub.Mode&syscall.S_ISGID == 0 || f.Mode&syscall.S_ISGID != 0 {
		t.Fatalf("setgid bits: subdir %o, file %o", sub.Mode, f.Mode)
	}
	plain := must[Attr](t)(fs.Create(RootIno, "plain", 0o644, me))
	if plain.GID != me.GID {
		t.Fatalf("outside a setgid directory: gid %d", plain.GID)
	}
}

// TestXattrNamespaces: names outside the namespaces Linux knows are
// refused with EOPNOTSUPP, as ext4 does; known ones work.
func TestXattrNamespaces(t *testing.T) {
	fs, _ := newTestFS(t, XChaCha20Poly1305, 0)
	defer fs.Close()
	f := must[Attr](t)(fs.Create(RootIno, "f", 0o644, me))
	for _, bad := range []string{"foo.bar", "user", "user.", "system.other", "system.posix_acl_accessx", "os2.x",
		"system.posix_acl_access", "system.posix_acl_default"} { // ACLs: not supported yet
		wantErr(t, fs.SetXattr(f.Ino, bad, []byte("v"), 0), syscall.EOPNOTSUPP)
		_, err := fs.GetXattr(f.Ino, bad)
		wantErr(t, err, syscall.EOPNOTSUPP)
		wantErr(t, fs.RemoveXattr(f.Ino, bad), syscall.EOPNOTSUPP)
	}
	for _, good := range []string{"user.x", "trusted.x", "security.selinux"} {
		must0(t, fs.SetXattr(f.Ino, good, []byte("v"), 0))
	}
}

// TestRenameExchange: RENAME_EXCHANGE swaps two names of any types,
// across directories, keeping link counts, parents and contents right,
// and refuses what Linux refuses.
func TestRenameExchange(t *testing.T) {
	fs, dir := newTestFS(t, XChaCha20Poly1305, 0)
	p1 := must[Attr](t)(fs.Mkdir(RootIno, "p1", 0o755, me))
	p2 := must[Attr](t)(fs.Mkdir(RootIno, "p2", 0o755, me))
	f := must[Attr](t)(fs.Create(p1.Ino, "x", 0o644, me))
	must[int](t)(fs.Write(f.Ino, []byte("file"), 0))
	d := must[Attr](t)(fs.Mkdir(p2.Ino, "y", 0o755, me))
	must[Attr](t)(fs.Mkdir(d.Ino, "inner", 0o755, me))

	must0(t, fs.Rename(p1.Ino, "x", p2.Ino, "y", RenameExchange)) // file <-> directory, across
	check := func(fs *FS) {
		t.Helper()
		x := must[Attr](t)(fs.Lookup(p1.Ino, "x"))
		y := must[Attr](t)(fs.Lookup(p2.Ino, "y"))
		if x.Ino != d.Ino || y.Ino != f.Ino {
			t.Fatalf("p1/x is %x, p2/y is %x: not swapped", x.Ino, y.Ino)
		}
		if x.Parent != p1.Ino {
			t.Fatalf("the directory's parent is %x, want p1", x.Parent)
		}
		if a, b := must[Attr](t)(fs.GetAttr(p1.Ino)), must[Attr](t)(fs.GetAttr(p2.Ino)); a.Nlink != 3 || b.Nlink != 2 {
			t.Fatalf("link counts p1 %d, p2 %d; want 3 and 2", a.Nlink, b.Nlink)
		}
		if got := readAll(t, fs, f.Ino); string(got) != "file" {
			t.Fatalf("content %q", got)
		}
		if names := listNames(t, fs, d.Ino); len(names) != 1 {
			t.Fatalf("the directory lists %v", names)
		}
	}
	check(fs)
	fs = reopen(t, fs, dir)
	defer fs.Close()
	check(fs)

	// Same directory, two files: contents follow the names.
	g := must[Attr](t)(fs.Create(p1.Ino, "g", 0o644, me))
	must0(t, fs.Rename(p1.Ino, "g", p1.Ino, "x", RenameExchange))
	if x := must[Attr](t)(fs.Lookup(p1.Ino, "x")); x.Ino != g.Ino {
		t.Fatal("same-directory exchange did not swap")
	}
	wantErr(t, fs.Rename(p1.Ino, "x", p1.Ino, "missing", RenameExchange), syscall.ENOENT)
	wantErr(t, fs.Rename(p1.Ino, "x", p1.Ino, "g", RenameExchange|RenameNoReplace), syscall.EINVAL)
	// A directory cannot be swapped with something below itself.
	wantErr(t, fs.Rename(p1.Ino, "g", d.Ino, "inner", RenameExchange), syscall.EINVAL)
}
