package encrypted

import "syscall"

// maxCopy bounds one CopyRange call; the kernel asks again for the rest.
const maxCopy = 1 << 30

// CopyRange copies up to length bytes of src from srcOff to dst at
// dstOff inside the store (copy_file_range within the mount): the
// plaintext moves from one file's chunks to the other's without crossing
// the kernel twice. Each file has its own keys, so it is decrypted and
// encrypted again. It returns the bytes copied: fewer only at the end of
// src, or when length passes maxCopy.
func (fs *FS) CopyRange(src Ino, srcOff uint64, dst Ino, dstOff uint64, length uint64) (uint64, error) {
	if srcOff > maxFileSize || dstOff > maxFileSize {
		return 0, syscall.EFBIG
	}
	length = min(length, maxCopy)
	step := max(fs.cs, 1<<20)
	buf := make([]byte, min(length, step))
	defer clear(buf)
	var done uint64
	for done < length {
		n, err := fs.Read(src, buf[:min(uint64(len(buf)), length-done)], int64(srcOff+done))
		if err != nil {
			return done, err
		}
		if n == 0 {
			break // the end of src
		}
		if _, err := fs.Write(dst, buf[:n], int64(dstOff+done)); err != nil {
			return done, err
		}
		done += uint64(n)
	}
	return done, nil
}
