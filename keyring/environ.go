package keyring

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// scrubProcEnviron overwrites variable name and its value in the
// environment block the process was started with. os.Unsetenv only
// changes Go's copy; the kernel keeps serving the original block as
// /proc/PID/environ to every process of the same user, for as long as we
// run. Go copied the block at start-up and never reads it again.
func scrubProcEnviron(name string) error {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	// Fields after the parenthesized command name; env_start and env_end
	// are fields 50 and 51 of proc(5), so 48 and 49 counted from field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return fmt.Errorf("unexpected /proc/self/stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 50 {
		return fmt.Errorf("/proc/self/stat has %d fields", len(f)+2)
	}
	start, err1 := strconv.ParseUint(f[47], 10, 64)
	end, err2 := strconv.ParseUint(f[48], 10, 64)
	if err1 != nil || err2 != nil || end <= start || end-start > 16<<20 {
		return fmt.Errorf("unexpected environment bounds in /proc/self/stat")
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer mem.Close()
	block := make([]byte, end-start)
	if _, err := mem.ReadAt(block, int64(start)); err != nil {
		return err
	}
	prefix := []byte(name + "=")
	for off := 0; off < len(block); {
		n := bytes.IndexByte(block[off:], 0)
		if n < 0 {
			n = len(block) - off
		}
		if bytes.HasPrefix(block[off:off+n], prefix) {
			// The whole entry, name too: a NUL run reads as no variable.
			if _, err := mem.WriteAt(make([]byte, n), int64(start)+int64(off)); err != nil {
				return err
			}
		}
		off += n + 1
	}
	return nil
}
