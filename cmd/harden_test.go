package cmd

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHarden runs harden in a child process (it cannot be undone) and
// checks that the kernel then reports the process non-dumpable.
func TestHarden(t *testing.T) {
	if os.Getenv("RENCFS_TEST_HARDEN") != "" {
		if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 1 {
			t.Fatalf("dumpable before: %d %v", d, err)
		}
		if err := harden(); err != nil {
			t.Fatal(err)
		}
		if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
			t.Fatalf("dumpable after: %d %v", d, err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHarden$", "-test.v")
	cmd.Env = append(os.Environ(), "RENCFS_TEST_HARDEN=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHarden") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
