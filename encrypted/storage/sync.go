package storage

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sync fsyncs every file and folder changed since the last Sync.
func (d *Dir) Sync() error {
	d.mu.Lock()
	files, dirs := d.dirtyFile, d.dirtyDir
	d.dirtyFile, d.dirtyDir = map[string]struct{}{}, map[string]struct{}{}
	d.mu.Unlock()

	var firstErr error
	if len(files)+len(dirs) > syncfsThreshold {
		// One syncfs(2) beats thousands of fsyncs (after unpacking an
		// archive, say), at the price of also flushing others' writes.
		firstErr = unix.Syncfs(d.rootFD)
	} else {
		// Files first, then the folders holding their new names.
		for _, set := range []map[string]struct{}{files, dirs} {
			for rel := range set {
				if err := d.fsync(rel); err != nil && firstErr == nil {
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

// syncfsThreshold is the number of changed files and folders above which
// Sync flushes the whole filesystem instead of each one.
const syncfsThreshold = 256

// fsync syncs the file or folder rel, opened beneath the root.
func (d *Dir) fsync(rel string) error {
	var fd int
	var err error
	if rel == "" || rel[len(rel)-1] == '/' {
		fd, err = d.folder(rel)
	} else {
		fd, err = d.openBeneath(rel)
	}
	if err == syscall.ENOENT {
		return nil // removed since; its folder is synced instead
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", rel, err)
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}
