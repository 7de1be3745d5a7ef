package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/internal/testutil"
)

func forCiphers(t *testing.T, f func(t *testing.T, c encrypted.Cipher)) {
	for _, c := range []encrypted.Cipher{encrypted.XChaCha20Poly1305, encrypted.AES256GCM} {
		t.Run(c.String(), func(t *testing.T) { f(t, c) })
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrno(t *testing.T, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func TestFilesThroughMount(t *testing.T) {
	forCiphers(t, func(t *testing.T, c encrypted.Cipher) {
		tm := mountT(t, c, Options{})
		p := tm.path("file")
		// 1 MiB + a bit, odd-sized writes: crosses chunks and FUSE requests.
		want := make([]byte, 1<<20+12345)
		for i := range want {
			want[i] = byte(i*31 + i>>9)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		check(t, err)
		for off := 0; off < len(want); off += 70001 {
			_, err := f.Write(want[off:min(off+70001, len(want))])
			check(t, err)
		}
		check(t, f.Sync())
		check(t, f.Close())
		_, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		wantErrno(t, err, syscall.EEXIST)

		got, err := os.ReadFile(p)
		check(t, err)
		if !bytes.Equal(got, want) {
			t.Fatal("read back differs")
		}
		// pread in the middle.
		f, err = os.Open(p)
		check(t, err)
		buf := make([]byte, 5000)
		_, err = f.ReadAt(buf, 262140)
		check(t, err)
		f.Close()
		if !bytes.Equal(buf, want[262140:267140]) {
			t.Fatal("pread differs")
		}
		// pwrite in the middle, then O_APPEND.
		f, err = os.OpenFile(p, os.O_WRONLY, 0)
		check(t, err)
		_, err = f.WriteAt([]byte("MIDDLE"), 300000)
		check(t, err)
		f.Close()
		copy(want[300000:], "MIDDLE")
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		check(t, err)
		_, err = f.Write([]byte("TAIL"))
		check(t, err)
		f.Close()
		want = append(want, "TAIL"...)

		tm.remount(t)
		got, err = os.ReadFile(p)
		check(t, err)
		if !bytes.Equal(got, want) {
			t.Fatal("after remount differs")
		}
		fi, err := os.Stat(p)
		check(t, err)
		if fi.Mode() != 0o640 || fi.Size() != int64(len(want)) {
			t.Fatalf("stat: %v %d", fi.Mode(), fi.Size())
		}
		// O_TRUNC.
		check(t, os.WriteFile(p, []byte("short"), 0o600))
		got, _ = os.ReadFile(p)
		if string(got) != "short" {
			t.Fatalf("after O_TRUNC: %q", got)
		}
	})
}

func TestSparseAndTruncateThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	p := tm.path("sparse")
	f, err := os.Create(p)
	check(t, err)
	_, err = f.WriteAt([]byte("end"), 10<<20)
	check(t, err)
	check(t, f.Close())
	var st syscall.Stat_t
	check(t, syscall.Stat(p, &st))
	if st.Size != 10<<20+3 || st.Blocks*512 > 1<<20 {
		t.Fatalf("sparse: size %d blocks %d", st.Size, st.Blocks)
	}
	got, err := os.ReadFile(p)
	check(t, err)
	if !bytes.Equal(got[:10<<20], make([]byte, 10<<20)) || string(got[10<<20:]) != "end" {
		t.Fatal("hole is not zeros")
	}
	check(t, os.Truncate(p, 5))
	check(t, os.Truncate(p, 100))
	got, _ = os.ReadFile(p)
	if !bytes.Equal(got, make([]byte, 100)) {
		t.Fatalf("truncate: %q", got[:8])
	}
}

func TestDirectoriesThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	check(t, os.MkdirAll(tm.path("a", "b", "c"), 0o755))
	check(t, os.WriteFile(tm.path("a", "b", "f"), []byte("x"), 0o644))
	wantErrno(t, syscall.Rmdir(tm.path("a")), syscall.ENOTEMPTY)
	wantErrno(t, syscall.Unlink(tm.path("a")), syscall.EISDIR)
	wantErrno(t, syscall.Rmdir(tm.path("a", "b", "f")), syscall.ENOTDIR)
	_, err := os.Stat(tm.path("a", "b", "f", "x"))
	wantErrno(t, err, syscall.ENOTDIR)
	_, err = os.Stat(tm.path("nope"))
	wantErrno(t, err, syscall.ENOENT)
	err = os.WriteFile(tm.path(strings.Repeat("n", 256)), nil, 0o644)
	wantErrno(t, err, syscall.ENAMETOOLONG)
	long := strings.Repeat("ü", 127) // 254 bytes
	check(t, os.WriteFile(tm.path(long), []byte("long"), 0o644))
	err = os.Mkdir(tm.path("a"), 0o755)
	wantErrno(t, err, syscall.EEXIST)

	var st syscall.Stat_t
	check(t, syscall.Stat(tm.path("a", "b"), &st))
	if st.Nlink != 3 {
		t.Fatalf("nlink of a/b = %d, want 3", st.Nlink)
	}

	// A directory of many entries, listed in full.
	check(t, os.Mkdir(tm.path("many"), 0o755))
	for i := range 1500 {
		check(t, os.WriteFile(tm.path("many", fmt.Sprintf("f%04d", i)), nil, 0o644))
	}
	tm.remount(t)
	ents, err := os.ReadDir(tm.path("many"))
	check(t, err)
	if len(ents) != 1500 || ents[0].Name() != "f0000" || ents[1499].Name() != "f1499" {
		t.Fatalf("readdir: %d entries", len(ents))
	}
	root, err := os.ReadDir(tm.mnt)
	check(t, err)
	var names []string
	for _, e := range root {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "many", long}) {
		t.Fatalf("root lists %q", names)
	}
	check(t, os.RemoveAll(tm.path("many")))
	check(t, os.RemoveAll(tm.path("a")))
	_, err = os.Stat(tm.path("a"))
	wantErrno(t, err, syscall.ENOENT)
}

func TestRenameThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	check(t, os.MkdirAll(tm.path("a", "sub"), 0o755))
	check(t, os.Mkdir(tm.path("b"), 0o755))
	check(t, os.Mkdir(tm.path("empty"), 0o755))
	check(t, os.WriteFile(tm.path("a", "f"), []byte("f"), 0o644))
	check(t, os.WriteFile(tm.path("b", "g"), []byte("g"), 0o644))

	check(t, os.Rename(tm.path("a", "f"), tm.path("b", "g"))) // replace, across
	got, _ := os.ReadFile(tm.path("b", "g"))
	if string(got) != "f" {
		t.Fatalf("b/g = %q", got)
	}
	_, err := os.Stat(tm.path("a", "f"))
	wantErrno(t, err, syscall.ENOENT)
	// syscall.Rename: os.Rename refuses to replace a directory by itself.
	check(t, syscall.Rename(tm.path("a", "sub"), tm.path("empty"))) // dir over empty dir
	check(t, os.Mkdir(tm.path("a", "deep"), 0o755))
	wantErrno(t, os.Rename(tm.path("a"), tm.path("a", "deep", "inside")), syscall.EINVAL)
	check(t, os.WriteFile(tm.path("empty", "x"), nil, 0o644))
	wantErrno(t, syscall.Rename(tm.path("b"), tm.path("empty")), syscall.ENOTEMPTY)
	wantErrno(t, syscall.Rename(tm.path("b", "g"), tm.path("empty")), syscall.EISDIR)
	check(t, os.WriteFile(tm.path("top"), nil, 0o644))
	wantErrno(t, os.Rename(tm.path("b"), tm.path("top")), syscall.ENOTDIR)
	check(t, os.Rename(tm.path("empty"), tm.path("b", "moved")))
	tm.remount(t)
	if _, err := os.Stat(tm.path("b", "moved", "x")); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	check(t, syscall.Stat(tm.path("b"), &st))
	if st.Nlink != 3 {
		t.Fatalf("nlink of b = %d, want 3", st.Nlink)
	}
}

func TestLinksAndSpecialFiles(t *testing.T) {
	tm := mountT(t, encrypted.AES256GCM, Options{})
	check(t, os.WriteFile(tm.path("f"), []byte("data"), 0o644))
	check(t, os.Link(tm.path("f"), tm.path("g")))
	check(t, os.Symlink("f", tm.path("l")))
	check(t, syscall.Mkfifo(tm.path("fifo"), 0o600))
	check(t, syscall.Mknod(tm.path("sock"), syscall.S_IFSOCK|0o600, 0))
	check(t, syscall.Mknod(tm.path("null"), syscall.S_IFCHR|0o600, 0x0103))
	tm.remount(t)
	var st syscall.Stat_t
	check(t, syscall.Stat(tm.path("g"), &st))
	if st.Nlink != 2 {
		t.Fatalf("nlink %d, want 2", st.Nlink)
	}
	var st2 syscall.Stat_t
	check(t, syscall.Stat(tm.path("f"), &st2))
	if st.Ino != st2.Ino {
		t.Fatal("hard links have different inode numbers")
	}
	if target, err := os.Readlink(tm.path("l")); err != nil || target != "f" {
		t.Fatalf("readlink %q %v", target, err)
	}
	if got, _ := os.ReadFile(tm.path("l")); string(got) != "data" {
		t.Fatalf("through symlink: %q", got)
	}
	for name, typ := range map[string]uint32{"fifo": syscall.S_IFIFO, "sock": syscall.S_IFSOCK, "null": syscall.S_IFCHR} {
		check(t, syscall.Lstat(tm.path(name), &st))
		if st.Mode&syscall.S_IFMT != typ {
			t.Fatalf("%s: mode %o", name, st.Mode)
		}
	}
	check(t, syscall.Lstat(tm.path("null"), &st))
	if st.Rdev != 0x0103 {
		t.Fatalf("rdev %x", st.Rdev)
	}
	check(t, os.Remove(tm.path("f")))
	check(t, syscall.Stat(tm.path("g"), &st))
	if st.Nlink != 1 {
		t.Fatalf("nlink after unlink %d", st.Nlink)
	}
	wantErrno(t, os.Link(tm.path("fifo"), tm.path("g")), syscall.EEXIST)
}

func TestAttributesThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	p := tm.path("f")
	check(t, os.WriteFile(p, nil, 0o644))
	check(t, os.Chown(p, 1234, 5678))
	check(t, syscall.Chmod(p, 0o4751)) // after chown, which clears setuid
	at := time.Unix(1_500_000_000, 111_222_333)
	mt := time.Unix(1_600_000_000, 444_555_666)
	check(t, os.Chtimes(p, at, mt))
	tm.remount(t)
	var st syscall.Stat_t
	check(t, syscall.Stat(p, &st))
	if st.Mode != syscall.S_IFREG|0o4751 || st.Uid != 1234 || st.Gid != 5678 {
		t.Fatalf("mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
	}
	if st.Atim.Sec != at.Unix() || st.Atim.Nsec != 111_222_333 || st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != 444_555_666 {
		t.Fatalf("times %v %v", st.Atim, st.Mtim)
	}
	// The sticky bit of a shared directory, as in /tmp.
	check(t, os.Mkdir(tm.path("shared"), 0o755))
	check(t, syscall.Chmod(tm.path("shared"), 0o1777))
	check(t, syscall.Stat(tm.path("shared"), &st))
	if st.Mode != syscall.S_IFDIR|0o1777 {
		t.Fatalf("sticky directory: mode %o", st.Mode)
	}
	// xattrs.
	check(t, syscall.Setxattr(p, "user.k", []byte("v1"), 0))
	wantErrno(t, syscall.Setxattr(p, "user.k", []byte("v2"), 1 /* XATTR_CREATE */), syscall.EEXIST)
	tm.remount(t)
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(p, "user.k", buf)
	check(t, err)
	if string(buf[:n]) != "v1" {
		t.Fatalf("xattr %q", buf[:n])
	}
	n, err = syscall.Listxattr(p, buf)
	check(t, err)
	if string(buf[:n]) != "user.k\x00" {
		t.Fatalf("listxattr %q", buf[:n])
	}
	check(t, syscall.Removexattr(p, "user.k"))
	_, err = syscall.Getxattr(p, "user.k", buf)
	wantErrno(t, err, syscall.ENODATA)
	// statfs.
	var sfs syscall.Statfs_t
	check(t, syscall.Statfs(tm.mnt, &sfs))
	if sfs.Blocks == 0 || sfs.Namelen != 255 {
		t.Fatalf("statfs %+v", sfs)
	}
}

// TestPermissions checks EACCES for another user (the kernel enforces the
// modes we report; the mount allows other users).
func TestPermissions(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{AllowOther: true})
	check(t, os.Chmod(filepath.Dir(tm.mnt), 0o755)) // t.TempDir's parent is 0700
	check(t, os.Chmod(tm.mnt, 0o755))
	check(t, os.WriteFile(tm.path("secret"), []byte("s"), 0o600))
	check(t, os.WriteFile(tm.path("public"), []byte("p"), 0o644))
	asNobody := func(args ...string) error {
		return exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...).Run()
	}
	if err := asNobody("cat", tm.path("public")); err != nil {
		t.Fatalf("nobody cannot read a 0644 file: %v", err)
	}
	if err := asNobody("cat", tm.path("secret")); err == nil {
		t.Fatal("nobody read a 0600 file")
	}
	if err := asNobody("touch", tm.path("new")); err == nil {
		t.Fatal("nobody created a file in a 0755 root-owned directory")
	}
	// A write by someone else clears setuid (we handle "killpriv").
	check(t, os.WriteFile(tm.path("suid"), []byte("x"), 0o644))
	check(t, syscall.Chmod(tm.path("suid"), 0o4777))
	if err := asNobody("sh", "-c", "echo more >> "+tm.path("suid")); err != nil {
		t.Fatalf("nobody cannot append to a 04777 file: %v", err)
	}
	var st syscall.Stat_t
	check(t, syscall.Stat(tm.path("suid"), &st))
	if st.Mode&syscall.S_ISUID != 0 || st.Mode&0o777 != 0o777 {
		t.Fatalf("after a write by another user: mode %o, want setuid cleared", st.Mode)
	}
	// So does a truncate, which reaches us as one SETATTR asking for both.
	check(t, syscall.Chmod(tm.path("suid"), 0o4777))
	if err := asNobody("truncate", "-s", "1", tm.path("suid")); err != nil {
		t.Fatalf("nobody cannot truncate a 04777 file: %v", err)
	}
	check(t, syscall.Stat(tm.path("suid"), &st))
	if st.Mode&syscall.S_ISUID != 0 || st.Mode&0o777 != 0o777 || st.Size != 1 {
		t.Fatalf("after a truncate by another user: mode %o size %d, want setuid cleared and size 1", st.Mode, st.Size)
	}
}

func TestDamagedFileGivesEIO(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	check(t, os.Mkdir(tm.path("dir"), 0o755))
	// Over 4 KiB, so that its content is a chunk object, not inside the inode.
	check(t, os.WriteFile(tm.path("dir", "victim"), bytes.Repeat([]byte("v"), 10000), 0o644))
	check(t, os.WriteFile(tm.path("fine"), []byte("fine"), 0o644))
	var st syscall.Stat_t
	check(t, syscall.Stat(tm.path("dir", "victim"), &st))
	tm.unmount(t)
	// Flip a byte of the victim's only chunk.
	ino := st.Ino
	name := hex16(ino) + hex16(0)
	chunk := filepath.Join(tm.data, "c", name[:2], name)
	b, err := os.ReadFile(chunk)
	check(t, err)
	b[len(b)/2] ^= 1
	check(t, os.WriteFile(chunk, b, 0o600))
	core, err := testutil.UnlockStore(tm.data, testPassword, encrypted.Options{})
	check(t, err)
	tm.core = core
	tm.mount(t)

	_, err = os.ReadFile(tm.path("dir", "victim"))
	wantErrno(t, err, syscall.EIO)
	if got, err := os.ReadFile(tm.path("fine")); err != nil || string(got) != "fine" {
		t.Fatalf("other file: %q %v", got, err)
	}
	if logs := tm.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "path=/dir/victim") {
		t.Fatalf("no warning naming /dir/victim in:\n%s", logs)
	}
	// The damaged file can still be removed.
	check(t, os.Remove(tm.path("dir", "victim")))
}

func hex16(v uint64) string { return fmt.Sprintf("%016x", v) }

func TestMountPointChecks(t *testing.T) {
	testutil.RequireFUSE(t)
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	if err := CheckMountPoint(tm.mnt); !errors.Is(err, ErrAlreadyMounted) {
		t.Fatalf("mounted mount point: %v", err)
	}
	if err := CheckMountPoint(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing: %v", err)
	}
	full := t.TempDir()
	check(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	if err := CheckMountPoint(full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("not empty: %v", err)
	}
}

func TestReadOnlyMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	check(t, os.WriteFile(tm.path("f"), []byte("ro"), 0o644))
	tm.unmount(t)
	core, err := testutil.UnlockStore(tm.data, testPassword, encrypted.Options{})
	check(t, err)
	tm.core, tm.opt = core, Options{ReadOnly: true}
	tm.mount(t)
	if got, _ := os.ReadFile(tm.path("f")); string(got) != "ro" {
		t.Fatalf("read %q", got)
	}
	wantErrno(t, os.WriteFile(tm.path("g"), nil, 0o644), syscall.EROFS)
}

// TestDamagedEntryListing: a directory with a damaged entry lists every
// entry that authenticates, then fails with EIO: the program learns that
// its listing is short, and the log names the directory.
func TestDamagedEntryListing(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	for _, n := range []string{"a", "b", "c"} {
		check(t, os.WriteFile(tm.path(n), []byte(n), 0o644))
	}
	tm.unmount(t)
	groups, err := filepath.Glob(filepath.Join(tm.data, "d", "*", "*"))
	check(t, err)
	if len(groups) != 3 {
		t.Fatalf("%d entry objects, want 3", len(groups))
	}
	b, err := os.ReadFile(groups[1])
	check(t, err)
	b[len(b)-1] ^= 1
	check(t, os.WriteFile(groups[1], b, 0o600))
	core, err := testutil.UnlockStore(tm.data, testPassword, encrypted.Options{})
	check(t, err)
	tm.core = core
	tm.mount(t)

	ents, err := os.ReadDir(tm.mnt)
	wantErrno(t, err, syscall.EIO)
	if len(ents) != 2 {
		t.Fatalf("listed %d names before the error, want the 2 intact ones", len(ents))
	}
	if out, err := exec.Command("ls", tm.mnt).CombinedOutput(); err == nil || !strings.Contains(string(out), "Input/output error") {
		t.Fatalf("ls of a damaged directory: %v: %s", err, out)
	}
	if logs := tm.logs.String(); !strings.Contains(logs, "op=readdir") || !strings.Contains(logs, "path=/") {
		t.Fatalf("no warning naming the directory in:\n%s", logs)
	}
}

// TestSetgidDirectoryAsUser: a user in a group makes a file and a
// directory in a setgid directory of that group: both take the group,
// the directory the setgid bit too (as on ext4).
func TestSetgidDirectoryAsUser(t *testing.T) {
	testutil.RequireFUSE(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	data := t.TempDir()
	core, err := testutil.CreateStore(data, testPassword, encrypted.Options{KDF: testutil.TestKDF})
	check(t, err)
	// Reachable by another user: t.TempDir's folders are 0700.
	mnt, err := os.MkdirTemp("", "rencfs-setgid-")
	check(t, err)
	check(t, os.Chmod(mnt, 0o755))
	t.Cleanup(func() { os.Remove(mnt) })
	tm := &testMount{mnt: mnt, data: data, logs: &testutil.SyncBuffer{}, opt: Options{AllowOther: true}, core: core}
	tm.mount(t)

	shared := tm.path("shared")
	check(t, os.Mkdir(shared, 0o777))
	check(t, os.Chown(shared, 0, 4242))
	check(t, syscall.Chmod(shared, 0o2777)) // os.Chmod would drop 0o2000: Go spells it os.ModeSetgid
	asUser := func(args ...string) {
		t.Helper()
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--groups=4242", "--"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	asUser("touch", filepath.Join(shared, "f"))
	asUser("mkdir", filepath.Join(shared, "sub"))
	for name, wantSetgid := range map[string]bool{"f": false, "sub": true} {
		var st syscall.Stat_t
		check(t, syscall.Stat(filepath.Join(shared, name), &st))
		if st.Uid != 65534 || st.Gid != 4242 || (st.Mode&syscall.S_ISGID != 0) != wantSetgid {
			t.Errorf("%s: uid %d gid %d mode %o", name, st.Uid, st.Gid, st.Mode)
		}
	}
}

// TestXattrNamespacesThroughMount: setfattr of a namespace Linux does not
// know fails with EOPNOTSUPP, as on ext4.
func TestXattrNamespacesThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	f := tm.path("f")
	check(t, os.WriteFile(f, nil, 0o644))
	wantErrno(t, unix.Setxattr(f, "foo.bar", []byte("v"), 0), syscall.EOPNOTSUPP)
	check(t, unix.Setxattr(f, "user.ok", []byte("v"), 0))
}

// TestRenameExchangeThroughMount: renameat2(RENAME_EXCHANGE) swaps a file
// and a directory atomically; RENAME_NOREPLACE refuses an existing name.
func TestRenameExchangeThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	check(t, os.WriteFile(tm.path("f"), []byte("content"), 0o644))
	check(t, os.MkdirAll(tm.path("d", "inside"), 0o755))
	check(t, unix.Renameat2(unix.AT_FDCWD, tm.path("f"), unix.AT_FDCWD, tm.path("d"), unix.RENAME_EXCHANGE))
	if got, err := os.ReadFile(tm.path("d")); err != nil || string(got) != "content" {
		t.Fatalf("d after the exchange: %q %v", got, err)
	}
	if _, err := os.Stat(tm.path("f", "inside")); err != nil {
		t.Fatalf("f/inside after the exchange: %v", err)
	}
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, tm.path("d"), unix.AT_FDCWD, tm.path("f"), unix.RENAME_NOREPLACE), syscall.EEXIST)
	tm.remount(t)
	if got, err := os.ReadFile(tm.path("d")); err != nil || string(got) != "content" {
		t.Fatalf("d after a remount: %q %v", got, err)
	}
}

// TestCopyKeepsModes: cp -a and cp -p keep every mode, and setfacl with
// what mode bits can say changes them. POSIX ACLs are not supported yet:
// answered EOPNOTSUPP, these tools fall back to chmod instead of storing
// an ACL that nothing applies (copies came out 0600 and 0700), and an ACL
// naming a user fails loudly instead of silently.
func TestCopyKeepsModes(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	src := t.TempDir()
	modes := map[string]uint32{"d755": 0o755, "d700": 0o700, "dsgid": 0o2775, "f644": 0o644, "f640": 0o640, "f600": 0o600}
	for name, mode := range modes {
		p := filepath.Join(src, name)
		if name[0] == 'd' {
			check(t, os.Mkdir(p, 0o700))
		} else {
			check(t, os.WriteFile(p, []byte(name), 0o600))
		}
		check(t, syscall.Chmod(p, mode))
	}
	for _, flag := range []string{"-a", "-p"} {
		dst := tm.path("copy" + flag)
		args := []string{flag, src, dst}
		if flag == "-p" {
			args = []string{"-r", "-p", src, dst}
		}
		run(t, "/", "cp", args...)
		for name, mode := range modes {
			var st syscall.Stat_t
			check(t, syscall.Stat(filepath.Join(dst, name), &st))
			if st.Mode&0o7777 != mode {
				t.Errorf("cp %s: %s is %o, want %o", flag, name, st.Mode&0o7777, mode)
			}
		}
	}
	if _, err := exec.LookPath("setfacl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("setfacl is missing: make deps installs it (Debian package acl)")
		}
		t.Skip("no setfacl (Debian package acl)")
	}
	f := tm.path("copy-a", "f644")
	run(t, "/", "setfacl", "-m", "o::---", f)
	var st syscall.Stat_t
	check(t, syscall.Stat(f, &st))
	if st.Mode&0o777 != 0o640 {
		t.Fatalf("setfacl -m o::--- left mode %o", st.Mode&0o777)
	}
	if out, err := exec.Command("setfacl", "-m", "u:65534:r", f).CombinedOutput(); err == nil || !strings.Contains(string(out), "not supported") {
		t.Fatalf("an ACL naming a user: %v: %s", err, out)
	}
}

// TestSeekHoleThroughMount: lseek SEEK_DATA/SEEK_HOLE see a sparse
// file's holes at chunk granularity (before: the whole file was data).
func TestSeekHoleThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	const chunk = encrypted.DefaultChunkSize
	f, err := os.Create(tm.path("sparse"))
	check(t, err)
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte("x"), chunk), 3*chunk)
	check(t, err)
	check(t, f.Truncate(6*chunk))
	check(t, f.Sync())
	fd := int(f.Fd())
	if off, err := unix.Seek(fd, 0, unix.SEEK_DATA); err != nil || off != 3*chunk {
		t.Fatalf("SEEK_DATA from 0: %d %v, want %d", off, err, 3*chunk)
	}
	if off, err := unix.Seek(fd, 3*chunk, unix.SEEK_HOLE); err != nil || off != 4*chunk {
		t.Fatalf("SEEK_HOLE from the data: %d %v, want %d", off, err, 4*chunk)
	}
	if _, err := unix.Seek(fd, 4*chunk, unix.SEEK_DATA); err != syscall.ENXIO {
		t.Fatalf("SEEK_DATA after the last data: %v, want ENXIO", err)
	}
}

// TestFallocateThroughMount: fallocate(2)'s modes through the kernel.
func TestFallocateThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	const chunk = encrypted.DefaultChunkSize
	f, err := os.Create(tm.path("f"))
	check(t, err)
	defer f.Close()
	fd := int(f.Fd())
	check(t, unix.Fallocate(fd, 0, 0, 3*chunk))
	var st syscall.Stat_t
	check(t, f.Sync())
	check(t, syscall.Fstat(fd, &st))
	if st.Size != 3*chunk || st.Blocks != 3*chunk/512 {
		t.Fatalf("after fallocate: size %d, blocks %d", st.Size, st.Blocks)
	}
	_, err = f.WriteAt(bytes.Repeat([]byte("x"), 3*chunk), 0)
	check(t, err)
	check(t, f.Sync())
	check(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, chunk, chunk))
	got, err := os.ReadFile(tm.path("f"))
	check(t, err)
	if len(got) != 3*chunk || !bytes.Equal(got[chunk:2*chunk], make([]byte, chunk)) || got[chunk-1] != 'x' || got[2*chunk] != 'x' {
		t.Fatal("punched range reads wrong")
	}
	wantErrno(t, unix.Fallocate(fd, unix.FALLOC_FL_COLLAPSE_RANGE, 0, chunk), syscall.EOPNOTSUPP)
}

// TestCopyFileRangeThroughMount: copy_file_range between two files of the
// mount is served by the daemon (the kernel sends COPY_FILE_RANGE, not
// reads and writes) and copies the bytes.
func TestCopyFileRangeThroughMount(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	data := make([]byte, 3*encrypted.DefaultChunkSize+5)
	for i := range data {
		data[i] = byte(i % 251)
	}
	check(t, os.WriteFile(tm.path("src"), data, 0o644))
	in, err := os.Open(tm.path("src"))
	check(t, err)
	defer in.Close()
	out, err := os.Create(tm.path("dst"))
	check(t, err)
	defer out.Close()
	done := 0
	for done < len(data) {
		n, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, len(data)-done, 0)
		check(t, err)
		if n == 0 {
			break
		}
		done += n
	}
	check(t, out.Close())
	if got, err := os.ReadFile(tm.path("dst")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy reads back wrong: %d bytes, %v", len(got), err)
	}
	if !strings.Contains(tm.logs.String(), "msg=copy_file_range") {
		t.Fatal("the daemon never served COPY_FILE_RANGE")
	}
}
