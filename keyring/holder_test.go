package keyring

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
	"github.com/rencfs/rencfs/fusefs"
	"github.com/rencfs/rencfs/internal/testutil"
)

var holderPassword = []byte("holder test password")

// testKDFKiB is the Argon2id memory of the tests' stores: the least allowed.
const testKDFKiB = 8 << 10

// newStore makes a store, with kdfKiB of Argon2id memory, holding one file
// that the kernel has never seen, so reading it through a mount must reach
// the store.
func newStore(t *testing.T, kdfKiB uint32) (storage.Storage, encrypted.Ino) {
	t.Helper()
	dir := t.TempDir()
	fs, err := encrypted.InitDir(dir, holderPassword, encrypted.Options{KDF: encrypted.KDFParams{Time: 1, MemoryKiB: kdfKiB, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := fs.Create(encrypted.RootIno, "file", 0o644, encrypted.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Write(a.Ino, []byte("read after the key was wiped"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := storage.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st, a.Ino
}

// TestIdleWipeThroughMount: with a 1 s idle timeout the key is wiped, and
// a read through the live mount afterwards still returns the right bytes.
func TestIdleWipeThroughMount(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, viaKeyring := range []bool{false, true} {
		name := "enclave"
		if viaKeyring {
			name = "keyring"
		}
		t.Run(name, func(t *testing.T) {
			if viaKeyring {
				testutil.RequireKeyringSession(t)
			}
			st, _ := newStore(t, testKDFKiB)
			logs := &testutil.SyncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h, err := Unlock(st, holderPassword, HolderOptions{Idle: time.Second, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			if viaKeyring {
				account, _ := Account(t.TempDir())
				if err := (OS{}).Set(account, holderPassword); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { OS{}.Delete(account) })
				h.UseKeyring(func() ([]byte, error) { return OS{}.Get(account) })
			}
			mnt := t.TempDir()
			m, err := fusefs.Mount(mnt, h.FS(), fusefs.Options{}, log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := m.Unmount(10 * time.Second); err != nil {
					t.Error(err)
				}
				if err := h.Close(); err != nil {
					t.Error(err)
				}
			})
			if h.Wiped() {
				t.Fatal("wiped at once")
			}
			deadline := time.Now().Add(10 * time.Second)
			for !h.Wiped() {
				if time.Now().After(deadline) {
					t.Fatal("key not wiped 10 s into a 1 s idle timeout")
				}
				time.Sleep(100 * time.Millisecond)
			}
			got, err := os.ReadFile(filepath.Join(mnt, "file"))
			if err != nil || string(got) != "read after the key was wiped" {
				t.Fatalf("read after wipe: %q %v", got, err)
			}
			if h.Wiped() {
				t.Fatal("key still wiped after an access")
			}
			l := logs.String()
			if !strings.Contains(l, "master key wiped after idle") || !strings.Contains(l, "master key restored") || !strings.Contains(l, "from="+name) {
				t.Fatalf("logs lack the wipe and restore events:\n%s", l)
			}
			if strings.Contains(l, string(holderPassword)) {
				t.Fatal("the password reached the log")
			}
		})
	}
}

func TestHolderWrongPassword(t *testing.T) {
	st, _ := newStore(t, testKDFKiB)
	if _, err := Unlock(st, []byte("nope"), HolderOptions{}); err != encrypted.ErrWrongPassword {
		t.Fatalf("err %v", err)
	}
}

// TestKDFMemoryReleased: once the key is out, Argon2id's scratch memory no
// longer counts toward the heap goal, after the first unlock and after a
// wiped key is derived again from the keyring's password.
func TestKDFMemoryReleased(t *testing.T) {
	const kdfMiB = 64
	st, _ := newStore(t, kdfMiB<<10)
	goal := func(when string) {
		t.Helper()
		s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
		metrics.Read(s)
		if g := s[0].Value.Uint64(); g >= kdfMiB<<20 {
			t.Fatalf("%s: heap goal %d MiB, not below the KDF's %d MiB", when, g>>20, kdfMiB)
		}
	}
	h, err := Unlock(st, holderPassword, HolderOptions{Idle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	goal("after unlock")
	derived := 0
	h.UseKeyring(func() ([]byte, error) { derived++; return slices.Clone(holderPassword), nil })
	deadline := time.Now().Add(10 * time.Second)
	for !h.Wiped() {
		if time.Now().After(deadline) {
			t.Fatal("key not wiped 10 s into a 50 ms idle timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := h.FS().Lookup(encrypted.RootIno, "absent"); err != syscall.ENOENT {
		t.Fatalf("lookup after wipe: %v", err)
	}
	if derived != 1 {
		t.Fatalf("key derived %d times from the keyring's password, want 1", derived)
	}
	goal("after restoring the key")
}
