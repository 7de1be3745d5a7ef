package encrypted

import "time"

// DefaultWriteBack is how long a change may wait in memory at most, as
// ext4's default commit interval. The kernel never passes sync(2) to a
// FUSE daemon, so without a bound of its own the store would keep queued
// attributes, a partial chunk or a file not yet closed in memory until a
// threshold, an fsync or the unmount: lost if the daemon is killed.
const DefaultWriteBack = 5 * time.Second

// writeBack stores whatever memory holds unsaved (attribute changes,
// partial chunks, names of files not closed yet, inodes). It runs every
// half write-back period, so a change waits at most about the period. A batch goes out
// together, as at sync: small-file speed keeps its batching. It runs
// only while the keys are loaded (a wipe stored everything first), and
// does not count as activity for the idle wipe.
func (fs *FS) writeBack() {
	if !fs.unsaved() {
		return
	}
	fs.keyMu.RLock()
	var err error
	if fs.keys.loaded() {
		err = fs.flushAll(false)
	}
	fs.keyMu.RUnlock()
	if err != nil {
		// What failed stays unsaved: it is tried again next time, and
		// reported by the next fsync or close.
		fs.log.Error("write-back failed", "err", err)
	}
}

// background runs tick every period, in a goroutine of its own, until
// the store closes (stopBackground).
func (fs *FS) background(period time.Duration, tick func()) {
	fs.bg.Add(1)
	go func() {
		defer fs.bg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-fs.stop:
				return
			case <-t.C:
				tick()
			}
		}
	}()
}

// unsaved reports whether memory holds anything not written yet.
func (fs *FS) unsaved() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.attrQueue) > 0 {
		return true
	}
	for _, n := range fs.nodes {
		if n.isDirty() {
			return true
		}
	}
	return false
}
