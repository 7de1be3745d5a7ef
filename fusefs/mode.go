package fusefs

import (
	"os"
	"syscall"
)

// toFileMode converts a POSIX mode (type and permission bits, as the
// store keeps it) to Go's os.FileMode, which bazil speaks.
func toFileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		fm |= os.ModeDir
	case syscall.S_IFLNK:
		fm |= os.ModeSymlink
	case syscall.S_IFIFO:
		fm |= os.ModeNamedPipe
	case syscall.S_IFSOCK:
		fm |= os.ModeSocket
	case syscall.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		fm |= os.ModeDevice
	}
	if m&syscall.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// fromFileMode converts back; a mode without type bits is a regular file.
func fromFileMode(fm os.FileMode) uint32 {
	m := uint32(fm.Perm())
	switch {
	case fm&os.ModeDir != 0:
		m |= syscall.S_IFDIR
	case fm&os.ModeSymlink != 0:
		m |= syscall.S_IFLNK
	case fm&os.ModeNamedPipe != 0:
		m |= syscall.S_IFIFO
	case fm&os.ModeSocket != 0:
		m |= syscall.S_IFSOCK
	case fm&os.ModeCharDevice != 0:
		m |= syscall.S_IFCHR
	case fm&os.ModeDevice != 0:
		m |= syscall.S_IFBLK
	default:
		m |= syscall.S_IFREG
	}
	return m | permBits(fm)
}

// permBits are the setuid, setgid and sticky bits of fm, in POSIX form.
func permBits(fm os.FileMode) uint32 {
	var m uint32
	if fm&os.ModeSetuid != 0 {
		m |= syscall.S_ISUID
	}
	if fm&os.ModeSetgid != 0 {
		m |= syscall.S_ISGID
	}
	if fm&os.ModeSticky != 0 {
		m |= syscall.S_ISVTX
	}
	return m
}
