package storage

import (
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is the local data-directory backend.
//
// Objects are files. Put writes an unnamed file (O_TMPFILE) and links it
// under the object's name, so a new object appears whole or not at all; an
// existing one is replaced by a rename, so a crash leaves the old or the
// new object. Where the filesystem has no O_TMPFILE, a named temporary
// file is written and renamed instead. PutNew, for objects nothing refers
// to yet, creates the file under its name and writes it in place. Nothing
// is fsync'd until Sync, which syncs exactly what changed since the last
// Sync: unpacking ten thousand files costs no fsync at all until then.
//
// The data dir is not trusted: every path is resolved beneath the root's
// file descriptor without following a symlink (openat2), and every change
// is made relative to the folder so opened, so that nothing is read or
// written outside the data dir, whatever stands in it. Paths are relative
// to the root, slash-separated.
type Dir struct {
	root      string
	rootFD    int         // held open for reads beneath it, and for the lock
	noOpenat2 atomic.Bool // openat2 is missing (ENOSYS): open with O_NOFOLLOW only
	noTmpfile atomic.Bool // O_TMPFILE failed once: use named temporary files

	mu        sync.Mutex
	dirtyFile map[string]struct{}
	dirtyDir  map[string]struct{}
}

// OpenDir returns the backend for the data directory root, which must
// exist, and takes its lock: while this Dir is open, no other OpenDir of
// the same directory succeeds, in this process or another (an exclusive
// flock on the directory, which the kernel drops when its holder exits,
// killed or not). Close releases it.
func OpenDir(root string) (*Dir, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOTDIR {
			return nil, fmt.Errorf("data dir %s: %w", root, syscall.ENOTDIR)
		}
		return nil, fmt.Errorf("data dir: %w", &fs.PathError{Op: "open", Path: root, Err: err})
	}
	if err := lockDir(fd, root); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Dir{root: root, rootFD: fd, dirtyFile: map[string]struct{}{}, dirtyDir: map[string]struct{}{}}, nil
}

// Close releases the lock. The Dir must not be used afterwards.
func (d *Dir) Close() error {
	if d.rootFD < 0 {
		return nil
	}
	err := unix.Close(d.rootFD) // drops the flock with the last reference
	d.rootFD = -1
	return err
}

// Root is the data directory this backend works in.
func (d *Dir) Root() string { return d.root }

// checkName refuses an object name that is not a slash-separated path of
// valid components (below the root, never "." or "..").
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty object name")
	}
	for _, c := range strings.Split(name, "/") {
		if !validComponent(c) {
			return fmt.Errorf("bad object name %q", name)
		}
	}
	return nil
}

// validComponent accepts the characters rencfs uses in on-disk names
// (lowercase hex, plus lowercase words for fixed names), which are safe on
// case-insensitive and Windows filesystems, and refuses "." and "..".
func validComponent(c string) bool {
	if c == "" || len(c) > 255 || c[0] == '.' {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b == '.' || b == '-') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return false
		}
	}
	return true
}

// Get reads an object of at most limit bytes.
func (d *Dir) Get(name string, limit int) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return d.read(name, limit)
}

// read reads the object at rel (slash-separated, below the root) with
// plain system calls: most reads are small objects, and many (a name
// being created) find none. What the data dir holds is not trusted: the
// path is resolved beneath the root without following any symlink, the
// open does not block (a FIFO), only a regular file is read, and no more
// than limit bytes (a sparse file of 64 GiB).
func (d *Dir) read(rel string, limit int) ([]byte, error) {
	fd, err := d.openBeneath(rel)
	if err == syscall.ENOENT {
		return nil, ErrNotExist
	}
	if err == syscall.ELOOP || err == syscall.EXDEV {
		return nil, fmt.Errorf("%s: a symlink: %w", rel, ErrBadObject)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: rel, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file: %w", rel, ErrBadObject)
	}
	if st.Size > int64(limit) {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d an object may have: %w", rel, st.Size, limit, ErrBadObject)
	}
	// One byte more than the size, to see the end in one read when the
	// object did not change meanwhile.
	b := make([]byte, 0, st.Size+1)
	for {
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: rel, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) > limit {
			return nil, fmt.Errorf("%s: grew past %d bytes: %w", rel, limit, ErrBadObject)
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// openBeneath opens rel for reading, resolved beneath the root with no
// symlink anywhere on the way (openat2, or on kernels before 5.6 one
// component at a time, see folder).
func (d *Dir) openBeneath(rel string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if !d.noOpenat2.Load() {
		fd, err := unix.Openat2(d.rootFD, rel, &unix.OpenHow{
			Flags: flags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
		})
		if err != unix.ENOSYS {
			return fd, err
		}
		d.noOpenat2.Store(true)
	}
	dir, base := path.Split(rel)
	dfd, err := d.folder(dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	return unix.Openat(dfd, base, flags, 0)
}

// Delete removes an object or an empty group.
func (d *Dir) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return d.remove(name)
}

// remove unlinks the object (or empty folder) rel, in its folder opened
// beneath the root: a folder swapped for a symlink is not followed.
func (d *Dir) remove(rel string) error {
	dir, base := path.Split(rel)
	dfd, err := d.folder(dir)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, base, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		err = unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR) // an empty group
	}
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: rel, Err: err}
	}
	d.mu.Lock()
	delete(d.dirtyFile, rel)
	delete(d.dirtyDir, rel+"/") // a group removed
	d.dirtyDir[dir] = struct{}{}
	d.mu.Unlock()
	return nil
}

// List streams the well-formed (lowercase hex) object names of a group,
// whatever their file type (Get refuses what is not a regular file).
// Temporary files and anything a sync client drops in are skipped.
func (d *Dir) List(group string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if err := checkName(group); err != nil {
			yield("", err)
			return
		}
		fd, err := d.folder(group)
		if err == syscall.ENOENT {
			return
		}
		if err != nil {
			yield("", &fs.PathError{Op: "open", Path: group, Err: err})
			return
		}
		f := os.NewFile(uintptr(fd), group)
		defer f.Close()
		for {
			ents, err := f.ReadDir(256)
			for _, e := range ents {
				// Not only regular files: whatever stands under an
				// object's name is read, and refused, as one.
				if isHex(e.Name()) {
					if !yield(e.Name(), nil) {
						return
					}
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield("", err)
				return
			}
		}
	}
}

// chunkName spreads chunks over 256 folders by file id, flat inside
// them: a folder per file would cost a directory creation per small file.
func chunkName(file, index uint64) string {
	name := fmt.Sprintf("%016x%016x", file, index)
	return "c/" + name[:2] + "/" + name
}

// GetChunk reads one content chunk of at most limit bytes.
func (d *Dir) GetChunk(file, index uint64, limit int) ([]byte, error) {
	return d.read(chunkName(file, index), limit)
}

// Usage reports the space of the filesystem holding the data directory.
func (d *Dir) Usage() (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.rootFD, &st); err != nil {
		return Usage{}, err
	}
	return Usage{
		BlockSize: uint32(st.Bsize), Blocks: st.Blocks, BlocksFree: st.Bfree, BlocksAvail: st.Bavail,
		Files: st.Files, FilesFree: st.Ffree,
	}, nil
}
