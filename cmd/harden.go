package cmd

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// harden makes the process non-dumpable: no core dump, not even through a
// pipe handler (which ignores RLIMIT_CORE), and its /proc/PID/mem,
// environ and maps open to root alone instead of every process of the
// user. Call it after keyring.TakeEnv, which writes /proc/self/mem.
func harden() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
