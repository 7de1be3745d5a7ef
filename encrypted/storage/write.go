package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const tmpPrefix = ".tmp-"

// Put replaces an object atomically.
func (d *Dir) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	return d.writeAtomic(name, data)
}

// PutNew stores an object nothing refers to yet (see Storage).
func (d *Dir) PutNew(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	return d.writeNew(name, data)
}

// PutChunk replaces one content chunk atomically.
func (d *Dir) PutChunk(file, index uint64, data []byte) error {
	return d.writeAtomic(chunkName(file, index), data)
}

// PutNewChunk stores a chunk no inode lists yet (see Storage.PutNew).
func (d *Dir) PutNewChunk(file, index uint64, data []byte) error {
	return d.writeNew(chunkName(file, index), data)
}

// DeleteChunk removes one content chunk.
func (d *Dir) DeleteChunk(file, index uint64) error {
	return d.remove(chunkName(file, index))
}

func (d *Dir) writeAtomic(rel string, data []byte) error {
	return d.write(rel, func(dfd int, base string) error { return d.writeLinked(dfd, base, data) })
}

// writeNew creates rel and writes data into it: three system calls,
// against four for an unnamed file linked in, and no orphan-list update in
// the filesystem's journal. It is not atomic, which Storage.PutNew allows.
func (d *Dir) writeNew(rel string, data []byte) error {
	err := d.write(rel, func(dfd int, base string) error { return createAt(dfd, base, data) })
	if errors.Is(err, syscall.EEXIST) {
		return d.writeAtomic(rel, data) // a partial leftover, or a race lost
	}
	return err
}

// write runs store in rel's folder, opened beneath the root (and created
// if missing), and remembers rel for the next Sync.
func (d *Dir) write(rel string, store func(dfd int, base string) error) error {
	dir, base := path.Split(rel)
	dfd, err := d.folderCreate(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := store(dfd, base); err != nil {
		return err
	}
	d.mu.Lock()
	d.dirtyFile[rel] = struct{}{}
	d.dirtyDir[dir] = struct{}{}
	d.mu.Unlock()
	return nil
}

// folder opens the folder dir ("" or "a/b/") beneath the root, following
// no symlink on the way, for use as the base of *at system calls.
func (d *Dir) folder(dir string) (int, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !d.noOpenat2.Load() {
		fd, err := unix.Openat2(d.rootFD, dir, &unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
		if err != unix.ENOSYS {
			return fd, beneathErr(err)
		}
		d.noOpenat2.Store(true)
	}
	// Before Linux 5.6: one component at a time, none followed.
	fd, err := unix.Dup(d.rootFD)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(dir, "/") {
		if c == "." {
			continue
		}
		next, err := unix.Openat(fd, c, flags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, beneathErr(err)
		}
		fd = next
	}
	return fd, nil
}

// beneathErr reports a symlink met on the way as damage.
func beneathErr(err error) error {
	if err == unix.ELOOP || err == unix.EXDEV || err == unix.ENOTDIR {
		return fmt.Errorf("a folder of the data dir is a symlink or a file: %w", ErrBadObject)
	}
	return err
}

// folderCreate is folder, creating the missing folders of dir one by one
// (each in its parent, opened beneath the root) and remembering each for
// the next Sync: a new directory entry is as volatile as a file.
func (d *Dir) folderCreate(dir string) (int, error) {
	fd, err := d.folder(dir)
	if err != syscall.ENOENT {
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		return fd, nil
	}
	parent, base := path.Split(strings.TrimSuffix(dir, "/"))
	pfd, err := d.folderCreate(parent)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o700)
	unix.Close(pfd)
	if err != nil && err != unix.EEXIST {
		return -1, &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	d.mu.Lock()
	d.dirtyDir[dir] = struct{}{}
	d.dirtyDir[parent] = struct{}{}
	d.mu.Unlock()
	fd, err = d.folder(dir)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// writeLinked stores data as base in folder dfd. A new object costs one
// unnamed file and one link, against a named temporary file, a rename and
// the directory changes of both: most objects are new.
func (d *Dir) writeLinked(dfd int, base string, data []byte) error {
	if d.noTmpfile.Load() {
		return renameTemp(dfd, base, data)
	}
	fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	switch {
	case err == syscall.EOPNOTSUPP || err == syscall.EISDIR || err == syscall.EINVAL:
		d.noTmpfile.Store(true)
		return renameTemp(dfd, base, data)
	case err != nil:
		return &fs.PathError{Op: "create", Path: base, Err: err}
	}
	defer syscall.Close(fd)
	if err := writeAll(fd, data); err != nil {
		return &fs.PathError{Op: "write", Path: base, Err: err}
	}
	// Linking through /proc needs no privilege, unlike AT_EMPTY_PATH.
	self := "/proc/self/fd/" + strconv.Itoa(fd)
	err = unix.Linkat(unix.AT_FDCWD, self, dfd, base, unix.AT_SYMLINK_FOLLOW)
	if err == nil {
		return nil
	}
	if err != syscall.EEXIST {
		return &fs.PathError{Op: "link", Path: base, Err: err}
	}
	// A replacement: link under a temporary name, rename that over.
	tmp := tempName()
	if err := unix.Linkat(unix.AT_FDCWD, self, dfd, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &fs.PathError{Op: "link", Path: tmp, Err: err}
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: base, Err: err}
	}
	return nil
}

// renameTemp stores data as base in folder dfd through a named temporary file.
func renameTemp(dfd int, base string, data []byte) error {
	tmp := tempName()
	if err := createAt(dfd, tmp, data); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: base, Err: err}
	}
	return nil
}

// PutDurable replaces an object atomically and durably: the new file is
// fsync'd before the rename, and the folder after it.
func (d *Dir) PutDurable(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	dir, base := path.Split(name)
	dfd, err := d.folderCreate(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := tempName()
	if err := createAtSynced(dfd, tmp, data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("write %s: %w", name, &fs.PathError{Op: "rename", Path: name, Err: err})
	}
	if err := unix.Fsync(dfd); err != nil {
		return fmt.Errorf("%w: sync %s: %v", ErrNotDurable, dir, err)
	}
	return nil
}

// createAt creates base in folder dfd, which must not hold it (nor a
// symlink by that name), and writes data into it, with plain system calls:
// an os.File's poller registration and finalizer cost more than the write
// of an object this small. A failed write leaves no file behind.
func createAt(dfd int, base string, data []byte) error {
	return create(dfd, base, data, false)
}

// createAtSynced is createAt with an fsync before the file is closed.
func createAtSynced(dfd int, base string, data []byte) error {
	return create(dfd, base, data, true)
}

func create(dfd int, base string, data []byte, sync bool) error {
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "create", Path: base, Err: err}
	}
	err = writeAll(fd, data)
	if err == nil && sync {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dfd, base, 0)
		return &fs.PathError{Op: "write", Path: base, Err: err}
	}
	return nil
}

func tempName() string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return tmpPrefix + hex.EncodeToString(rnd[:])
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
