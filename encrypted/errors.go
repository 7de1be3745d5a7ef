package encrypted

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors for callers to test with errors.Is.
var (
	// ErrWrongPassword: the password does not unwrap the master key (or the
	// header's parameters were tampered with, which looks the same).
	ErrWrongPassword = errors.New("wrong password")
	// ErrCorrupt: an on-disk object failed authentication, is missing, or is
	// malformed. It concerns one object; the rest of the store keeps working.
	ErrCorrupt = errors.New("data is corrupt")
	// ErrNotStore: the data directory holds no rencfs header.
	ErrNotStore = errors.New("not a rencfs data directory")
	// ErrNotEmpty: Init was asked to create a store in a directory with files.
	ErrNotEmpty = errors.New("data directory is not empty")
)

// VersionError reports a data directory written by a newer rencfs.
type VersionError struct {
	Found, Supported uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("data dir format version %d is newer than this rencfs supports (version %d); upgrade rencfs", e.Found, e.Supported)
}

// Errno maps an error from this package to the errno a filesystem should
// return: the wrapped syscall.Errno when there is one, EIO otherwise.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}
