package keyring

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	gokeyring "github.com/zalando/go-keyring"
)

// Service is the OS keyring service rencfs stores passwords under.
const Service = "rencfs"

// Mode says how mount uses the OS keyring.
type Mode int

const (
	Auto   Mode = iota // use it when reachable, else carry on without (one warning)
	Always             // fail when it is not reachable
	Never              // do not touch it
)

// ParseMode reads --keyring.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto":
		return Auto, nil
	case "always":
		return Always, nil
	case "never":
		return Never, nil
	}
	return 0, fmt.Errorf("unknown keyring mode %q (want auto, always or never)", s)
}

// ErrNotFound: the keyring holds no secret for this data dir.
var ErrNotFound = errors.New("no secret in the keyring")

// ErrStale: the keyring's entry for this data dir is not a secret this
// rencfs wrote (an older version's, or damaged). Delete it.
var ErrStale = errors.New("the keyring's entry is not a rencfs store secret")

// ErrUnavailable: no Secret Service could be reached.
var ErrUnavailable = errors.New("OS keyring unavailable")

// Account names a data dir in the keyring: its absolute path.
func Account(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	return "data-dir:" + abs, nil
}

// OS is the operating system's keyring (the Secret Service over D-Bus on
// Linux). Every error but a missing entry means it is unavailable. It
// holds binary secrets as text: a versioned prefix and base64.
type OS struct{}

const secretPrefix = "rencfs-secret-v1:"

func (OS) Get(account string) ([]byte, error) {
	s, err := gokeyring.Get(Service, account)
	if errors.Is(err, gokeyring.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	enc, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, ErrStale
	}
	secret, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, ErrStale
	}
	return secret, nil
}

func (OS) Set(account string, secret []byte) error {
	if err := gokeyring.Set(Service, account, secretPrefix+base64.StdEncoding.EncodeToString(secret)); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

func (OS) Delete(account string) error {
	err := gokeyring.Delete(Service, account)
	if err != nil && !errors.Is(err, gokeyring.ErrNotFound) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Keyring is what mount needs of a keyring.
type Keyring interface {
	Get(account string) ([]byte, error)
	Set(account string, secret []byte) error
	Delete(account string) error
}

// Store keeps the secret of account in k as mode says. It reports
// whether the secret is in the keyring: Auto warns once and carries on
// without, Always fails, Never does nothing.
func Store(k Keyring, mode Mode, account string, secret []byte, log *slog.Logger) (bool, error) {
	if mode == Never {
		return false, nil
	}
	err := k.Set(account, secret)
	switch {
	case err == nil:
		return true, nil
	case mode == Always:
		return false, fmt.Errorf("--keyring always: %w", err)
	}
	log.Warn("OS keyring unavailable: the key stays sealed in memory instead (use --keyring never to silence this)", "err", err)
	return false, nil
}
