package fusefs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rencfs/rencfs/encrypted"
)

// TestExtractGoSource unpacks Go's own source tree (about 11,500 files)
// into the mount and compares it with the original, byte for byte, across
// a remount.
func TestExtractGoSource(t *testing.T) {
	goroot := strings.TrimSpace(run(t, "", "go", "env", "GOROOT"))
	src := filepath.Join(goroot, "src")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("Go source tree: %v", err)
	}
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	tarball := filepath.Join(t.TempDir(), "src.tar")
	run(t, goroot, "tar", "-cf", tarball, "src")
	run(t, tm.mnt, "tar", "-xf", tarball)
	tm.remount(t)
	run(t, tm.mnt, "diff", "-r", "--no-dereference", src, filepath.Join(tm.mnt, "src"))
}

// TestGit commits 100 files in the mount and checks the repository.
func TestGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	tm := mountT(t, encrypted.AES256GCM, Options{})
	repo := tm.path("repo")
	check(t, os.Mkdir(repo, 0o755))
	git := func(args ...string) string {
		t.Helper()
		return run(t, repo, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	}
	git("init", "-q")
	for i := range 100 {
		check(t, os.MkdirAll(filepath.Join(repo, fmt.Sprint("d", i%7)), 0o755))
		check(t, os.WriteFile(filepath.Join(repo, fmt.Sprint("d", i%7), fmt.Sprint("f", i)), bytes.Repeat([]byte(fmt.Sprintln("line", i)), i+1), 0o644))
	}
	git("add", ".")
	git("commit", "-q", "-m", "100 files")
	tm.remount(t)
	git("fsck", "--full", "--strict")
	if n := strings.Count(git("ls-files"), "\n"); n != 100 {
		t.Fatalf("git ls-files: %d files", n)
	}
	if st := git("status", "--porcelain"); st != "" {
		t.Fatalf("git status after remount:\n%s", st)
	}
}

// TestConcurrentAppend has two processes append lines to one file at
// once; every line must arrive whole.
func TestConcurrentAppend(t *testing.T) {
	tm := mountT(t, encrypted.XChaCha20Poly1305, Options{})
	p := tm.path("log")
	const lines = 500
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, who := range []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo %s-$i >> %s; i=$((i+1)); done", lines, who, p)
			if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tm.remount(t)
	data, err := os.ReadFile(p)
	check(t, err)
	got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(got) != 2*lines {
		t.Fatalf("%d lines, want %d", len(got), 2*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		if !strings.HasPrefix(l, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-") && !strings.HasPrefix(l, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-") {
			t.Fatalf("torn line %q", l)
		}
		seen[l] = true
	}
	if len(seen) != 2*lines {
		t.Fatalf("%d distinct lines, want %d", len(seen), 2*lines)
	}
}
