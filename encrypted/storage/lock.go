package storage

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockedError says which process holds a data dir: PID is 0 when the
// holder could not be found (it may run in another PID namespace).
type LockedError struct {
	Dir string
	PID int
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("%s is in use by another rencfs process", e.Dir)
	}
	return fmt.Sprintf("%s is in use by rencfs process %d", e.Dir, e.PID)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lockDir takes an exclusive flock on the open directory fd. The lock
// belongs to the open file: a second open, even in this process, is
// refused, and the kernel drops it when the holder dies, so a killed
// mount never blocks the next one. No file is written for it: the data
// dir holds nothing but objects.
func lockDir(fd int, dir string) error {
	err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return nil
	}
	if err != unix.EWOULDBLOCK {
		return fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	var st unix.Stat_t
	pid := 0
	if unix.Fstat(fd, &st) == nil {
		pid = flockHolder(st.Dev, st.Ino)
	}
	return &LockedError{Dir: dir, PID: pid}
}

// flockHolder finds, in /proc/locks, the process holding a flock on the
// file (dev, ino); 0 if none is listed. Lines read like
// "1: FLOCK  ADVISORY  WRITE 4242 08:01:131 0 EOF".
func flockHolder(dev, ino uint64) int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}
