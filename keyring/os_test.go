package keyring

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/rencfs/rencfs/internal/testutil"
)

func TestOSKeyringRoundTrip(t *testing.T) {
	testutil.RequireKeyringSession(t)
	k := OS{}
	account, err := Account(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(account); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get before set: %v", err)
	}
	logs := &bytes.Buffer{}
	secret := []byte("s3cret\x00\xff\x80 binary")
	stored, err := Store(k, Always, account, secret, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil || !stored {
		t.Fatalf("store: %v %v", stored, err)
	}
	if got, err := k.Get(account); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("get: %q %v", got, err)
	}
	// An entry rencfs did not write this way (an older version kept the
	// password itself) is stale, not a secret.
	if err := gokeyring.Set(Service, account, "a plain password"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(account); !errors.Is(err, ErrStale) {
		t.Fatalf("get of a plain entry: %v", err)
	}
	if err := k.Delete(account); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(account); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := k.Delete(account); err != nil {
		t.Fatalf("deleting a missing entry: %v", err)
	}
	if stored, err := Store(k, Never, account, []byte("x"), slog.New(slog.NewTextHandler(logs, nil))); stored || err != nil {
		t.Fatalf("never: %v %v", stored, err)
	}
	if _, err := k.Get(account); !errors.Is(err, ErrNotFound) {
		t.Fatalf("--keyring never stored something: %v", err)
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected logs: %s", logs)
	}
}

// TestNoSecretService runs the fallback check in a child process whose
// session bus does not exist, so that go-keyring meets the real failure.
func TestNoSecretService(t *testing.T) {
	if os.Getenv("RENCFS_TEST_NO_BUS") != "" {
		noSecretServiceChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoSecretService$", "-test.v")
	cmd.Env = append(os.Environ(), "RENCFS_TEST_NO_BUS=1", "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/rencfs-test-bus")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNoSecretService") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func noSecretServiceChild(t *testing.T) {
	k := OS{}
	if _, err := k.Get("data-dir:/x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get without a bus: %v", err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	stored, err := Store(k, Auto, "data-dir:/x", []byte("pw"), log)
	if stored || err != nil {
		t.Fatalf("auto: stored %v, err %v", stored, err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("auto should warn in one line, got:\n%s", logs)
	}
	if strings.Contains(logs.String(), "pw") && strings.Contains(logs.String(), "=pw") {
		t.Fatalf("the password reached the log:\n%s", logs)
	}
	if _, err := Store(k, Always, "data-dir:/x", []byte("pw"), log); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("always: %v", err)
	}
}

func TestTakeEnv(t *testing.T) {
	t.Setenv("RENCFS_TEST_SECRET", "value")
	pw, ok, _ := TakeEnv("RENCFS_TEST_SECRET")
	if !ok || string(pw) != "value" {
		t.Fatalf("TakeEnv: %q %v", pw, ok)
	}
	if v, still := os.LookupEnv("RENCFS_TEST_SECRET"); still {
		t.Fatalf("still in the environment: %q", v)
	}
	if _, ok, _ := TakeEnv("RENCFS_TEST_SECRET"); ok {
		t.Fatal("read twice")
	}
}
