package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
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
// is fsync'd until Sync, which
// syncs exactly what changed since the last Sync: unpacking ten thousand
// files costs no fsync at all until then.
type Dir struct {
	root      string
	rootFD    int         // held open for reads beneath it, and for the lock
	noOpenat2 atomic.Bool // openat2 is missing (ENOSYS): open with O_NOFOLLOW only
	noTmpfile atomic.Bool // O_TMPFILE failed once: use named temporary files

	mu        sync.Mutex
	dirtyFile map[string]struct{}
	dirtyDir  map[string]struct{}
}

const tmpPrefix = ".tmp-"

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

func (d *Dir) path(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty object name")
	}
	for _, c := range strings.Split(name, "/") {
		if !validComponent(c) {
			return "", fmt.Errorf("bad object name %q", name)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
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
	if _, err := d.path(name); err != nil {
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
// symlink anywhere on the way (openat2), or, on kernels without openat2
// (before 5.6), with O_NOFOLLOW for its last component.
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
	return unix.Openat(d.rootFD, rel, flags, 0)
}

// Put replaces an object atomically.
func (d *Dir) Put(name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	return d.writeAtomic(p, data)
}

func (d *Dir) writeAtomic(p string, data []byte) error {
	dir := filepath.Dir(p)
	return d.write(p, func() error { return d.writeLinked(dir, p, data) })
}

// write runs store, which writes object p, creating p's folder first if
// store finds it missing, and remembers p for the next Sync.
func (d *Dir) write(p string, store func() error) error {
	dir := filepath.Dir(p)
	err := store()
	if errors.Is(err, syscall.ENOENT) {
		if err = d.mkdirAll(dir); err != nil {
			return err
		}
		err = store()
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.dirtyFile[p] = struct{}{}
	d.dirtyDir[dir] = struct{}{}
	d.mu.Unlock()
	return nil
}

// PutNew stores an object nothing refers to yet (see Storage).
func (d *Dir) PutNew(name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	return d.writeNew(p, data)
}

// writeNew creates p and writes data into it: three system calls, against
// four for an unnamed file linked in, and no orphan-list update in the
// filesystem's journal. It is not atomic, which Storage.PutNew allows.
func (d *Dir) writeNew(p string, data []byte) error {
	err := d.write(p, func() error { return createFile(p, data) })
	if errors.Is(err, syscall.EEXIST) {
		return d.writeAtomic(p, data) // a partial leftover, or a race lost
	}
	return err
}

// writeLinked stores data as p. A new object costs one unnamed file and
// one link, against a named temporary file, a rename and the
// directory changes of both: most objects are new.
func (d *Dir) writeLinked(dir, p string, data []byte) error {
	if d.noTmpfile.Load() {
		return renameTemp(dir, p, data)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	switch {
	case err == syscall.EOPNOTSUPP || err == syscall.EISDIR || err == syscall.EINVAL:
		d.noTmpfile.Store(true)
		return renameTemp(dir, p, data)
	case err != nil:
		return &fs.PathError{Op: "create", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	if err := writeAll(fd, data); err != nil {
		return &fs.PathError{Op: "write", Path: p, Err: err}
	}
	// Linking through /proc needs no privilege, unlike AT_EMPTY_PATH.
	self := "/proc/self/fd/" + strconv.Itoa(fd)
	err = unix.Linkat(unix.AT_FDCWD, self, unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
	if err == nil {
		return nil
	}
	if err != syscall.EEXIST {
		return &fs.PathError{Op: "link", Path: p, Err: err}
	}
	// A replacement: link under a temporary name, rename that over.
	tmp := tempName(dir)
	if err := unix.Linkat(unix.AT_FDCWD, self, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &fs.PathError{Op: "link", Path: tmp, Err: err}
	}
	if err := syscall.Rename(tmp, p); err != nil {
		syscall.Unlink(tmp)
		return &fs.PathError{Op: "rename", Path: p, Err: err}
	}
	return nil
}

// renameTemp stores data as p through a named temporary file.
func renameTemp(dir, p string, data []byte) error {
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	if err := syscall.Rename(tmp, p); err != nil {
		syscall.Unlink(tmp)
		return &fs.PathError{Op: "rename", Path: p, Err: err}
	}
	return nil
}

// PutDurable replaces an object atomically and durably: the new file is
// fsync'd before the rename, and the directory after it.
func (d *Dir) PutDurable(name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := d.mkdirAll(dir); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, data)
	if err == nil {
		if err = fsyncPath(tmp); err == nil {
			err = syscall.Rename(tmp, p)
		}
		if err != nil {
			syscall.Unlink(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := fsyncPath(dir); err != nil {
		return fmt.Errorf("%w: sync %s: %v", ErrNotDurable, dir, err)
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir, with plain system
// calls: an os.File's poller registration and finalizer cost more than
// the write of an object this small.
func writeTemp(dir string, data []byte) (string, error) {
	tmp := tempName(dir)
	if err := createFile(tmp, data); err != nil {
		return "", err
	}
	return tmp, nil
}

// createFile creates p, which must not exist, and writes data into it; a
// failed write leaves no file behind.
func createFile(p string, data []byte) error {
	fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: p, Err: err}
	}
	err = writeAll(fd, data)
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		syscall.Unlink(p)
		return &fs.PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

func tempName(dir string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// mkdirAll creates dir and its missing parents below the root, remembering
// each for the next Sync: a new directory entry is as volatile as a file.
func (d *Dir) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(d.root) {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	d.mu.Lock()
	d.dirtyDir[dir] = struct{}{}
	d.dirtyDir[parent] = struct{}{}
	d.mu.Unlock()
	return nil
}

// Delete removes an object or an empty group.
func (d *Dir) Delete(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	return d.remove(p)
}

func (d *Dir) remove(p string) error {
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.dirtyFile, p)
	delete(d.dirtyDir, p)
	d.dirtyDir[filepath.Dir(p)] = struct{}{}
	d.mu.Unlock()
	return nil
}

// List streams the well-formed (lowercase hex) object names of a group,
// whatever their file type (Get refuses what is not a regular file).
// Temporary files and anything a sync client drops in are skipped.
func (d *Dir) List(group string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		p, err := d.path(group)
		if err != nil {
			yield("", err)
			return
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield("", err)
			return
		}
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

func (d *Dir) chunkPath(file, index uint64) string {
	return filepath.Join(d.root, filepath.FromSlash(chunkName(file, index)))
}

// GetChunk reads one content chunk of at most limit bytes.
func (d *Dir) GetChunk(file, index uint64, limit int) ([]byte, error) {
	return d.read(chunkName(file, index), limit)
}

// PutChunk replaces one content chunk atomically.
func (d *Dir) PutChunk(file, index uint64, data []byte) error {
	return d.writeAtomic(d.chunkPath(file, index), data)
}

// PutNewChunk stores a chunk no inode lists yet (see Storage.PutNew).
func (d *Dir) PutNewChunk(file, index uint64, data []byte) error {
	return d.writeNew(d.chunkPath(file, index), data)
}

// DeleteChunk removes one content chunk.
func (d *Dir) DeleteChunk(file, index uint64) error {
	return d.remove(d.chunkPath(file, index))
}

// Sync fsyncs every file and directory changed since the last Sync.
func (d *Dir) Sync() error {
	d.mu.Lock()
	files, dirs := d.dirtyFile, d.dirtyDir
	d.dirtyFile, d.dirtyDir = map[string]struct{}{}, map[string]struct{}{}
	d.mu.Unlock()

	var firstErr error
	if len(files)+len(dirs) > syncfsThreshold {
		// One syncfs(2) beats thousands of fsyncs (after unpacking an
		// archive, say), at the price of also flushing others' writes.
		firstErr = d.syncfs()
	} else {
		// Files first, then the directories holding their new names.
		for _, set := range []map[string]struct{}{files, dirs} {
			for p := range set {
				if err := fsyncPath(p); err != nil && firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	if firstErr != nil {
		// Keep them for the next attempt.
		d.mu.Lock()
		for p := range files {
			d.dirtyFile[p] = struct{}{}
		}
		for p := range dirs {
			d.dirtyDir[p] = struct{}{}
		}
		d.mu.Unlock()
		return fmt.Errorf("sync: %w", firstErr)
	}
	return nil
}

// syncfsThreshold is the number of changed files and directories above
// which Sync flushes the whole filesystem instead of each one.
const syncfsThreshold = 256

func (d *Dir) syncfs() error {
	f, err := os.Open(d.root)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since; its parent directory is synced instead
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Usage reports the space of the filesystem holding the data directory.
func (d *Dir) Usage() (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.root, &st); err != nil {
		return Usage{}, err
	}
	return Usage{
		BlockSize: uint32(st.Bsize), Blocks: st.Blocks, BlocksFree: st.Bfree, BlocksAvail: st.Bavail,
		Files: st.Files, FilesFree: st.Ffree,
	}, nil
}
