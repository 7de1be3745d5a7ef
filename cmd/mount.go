package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/fusefs"
	"github.com/rencfs/rencfs/keyring"
)

type mountFlags struct {
	mountPoint, dataDir, cipher string
	readOnly, allowOther        bool
	umountOnStart               bool
}

func newMount(a *app) *cobra.Command {
	var f mountFlags
	c := &cobra.Command{
		Use:   "mount --mount-point M --data-dir D",
		Short: "Mount a data dir (creating the store on first use) and serve it until interrupted",
		Long: "Mount serves the store in data dir D at mount point M in the foreground.\n" +
			"An empty or missing D gets a new store. SIGINT or SIGTERM unmounts cleanly.\n" +
			"The password comes from " + keyring.EnvPassword + " (then removed from the environment)\n" +
			"or a terminal prompt; never from the command line.",
		Example: "  rencfs mount -m ~/private -d ~/Dropbox/private.rencfs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.mount(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.mountPoint, "mount-point", "m", "", "directory to mount on (must exist and be empty)")
	fl.StringVarP(&f.dataDir, "data-dir", "d", "", "directory holding the encrypted store")
	fl.StringVar(&f.cipher, "cipher", "chacha20poly1305", "cipher of a new store: chacha20poly1305 or aes256gcm")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount read-only")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users access the mount (root, or user_allow_other in /etc/fuse.conf)")
	fl.BoolVar(&f.umountOnStart, "umount-on-start", false, "lazily unmount a stale mount at the mount point first")
	c.MarkFlagRequired("mount-point")
	c.MarkFlagRequired("data-dir")
	return c
}

func (a *app) mount(cmd *cobra.Command, f mountFlags) error {
	// First of all, so that no child process can inherit it.
	envPw, fromEnv, err := keyring.TakeEnv(keyring.EnvPassword)
	defer keyring.Wipe(envPw)
	if err != nil {
		a.log.Warn("the password may remain visible in /proc", "err", err)
	}

	cipher, err := encrypted.ParseCipher(f.cipher)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.umountOnStart {
		if mounted, _ := fusefs.IsMounted(f.mountPoint); mounted {
			a.log.Info("unmounting a stale mount", "mount_point", f.mountPoint)
			if err := fusefs.LazyUnmount(f.mountPoint); err != nil {
				return withCode(exitMount, err)
			}
		}
	}
	if err := fusefs.CheckMountPoint(f.mountPoint); err != nil {
		return withCode(exitMount, err)
	}

	pw := passwordSource{env: envPw, fromEnv: fromEnv, term: keyring.Terminal{In: os.Stdin, Out: os.Stderr}}
	core, err := openOrInit(f.dataDir, cipher, cmd.Flags().Changed("cipher"), pw)
	if err != nil {
		return err
	}
	m, err := fusefs.Mount(f.mountPoint, core, fusefs.Options{ReadOnly: f.readOnly, AllowOther: f.allowOther}, a.log)
	if err != nil {
		core.Close()
		return withCode(exitMount, err)
	}
	// Signals are caught before announcing readiness, so a script that
	// waits for the line and then sends SIGTERM gets a clean unmount.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	fmt.Fprintf(cmd.OutOrStdout(), "rencfs: mounted %s at %s (press Ctrl-C to unmount)\n", f.dataDir, m.Dir())

	select {
	case s := <-sig:
		a.log.Info("unmounting", "signal", s.String())
		err = m.Unmount(10 * time.Second)
	case <-m.Done():
		a.log.Info("unmounted from outside")
		err = m.Unmount(0)
	}
	if cerr := core.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	return nil
}

// passwordSource is where mount and passwd read passwords from.
type passwordSource struct {
	env     []byte
	fromEnv bool
	term    keyring.Terminal
}

// existing returns the password of an existing store.
func (p passwordSource) existing() ([]byte, error) {
	if p.fromEnv {
		return append([]byte(nil), p.env...), nil
	}
	return p.term.Read("Password: ")
}

// fresh returns the password for a new store, asked twice on a terminal.
func (p passwordSource) fresh() ([]byte, error) {
	if p.fromEnv {
		if len(p.env) == 0 {
			return nil, keyring.ErrEmpty
		}
		return append([]byte(nil), p.env...), nil
	}
	return p.term.ReadNew("New password for the new store: ")
}

// openOrInit unlocks the store in dir, or creates one if dir is missing
// or empty.
func openOrInit(dir string, cipher encrypted.Cipher, cipherSet bool, pw passwordSource) (*encrypted.FS, error) {
	empty, err := encrypted.Fresh(dir)
	if err != nil {
		return nil, withCode(exitStore, err)
	}
	if empty {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, withCode(exitStore, fmt.Errorf("create data dir: %w", err))
		}
		p, err := pw.fresh()
		if err != nil {
			return nil, err
		}
		defer keyring.Wipe(p)
		core, err := encrypted.InitDir(dir, p, encrypted.Options{Cipher: cipher, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
		if err != nil {
			return nil, withCode(exitStore, fmt.Errorf("create store in %s: %w", dir, err))
		}
		return core, nil
	}
	p, err := pw.existing()
	if err != nil {
		return nil, err
	}
	defer keyring.Wipe(p)
	core, err := encrypted.OpenDir(dir, p)
	if err != nil {
		if errors.Is(err, encrypted.ErrNotStore) {
			return nil, withCode(exitStore, fmt.Errorf("%s is not a rencfs data dir (and not empty)", dir))
		}
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if cipherSet && core.Cipher() != cipher {
		core.Close()
		return nil, withCode(exitUsage, fmt.Errorf("--cipher %s: the store in %s uses %s", cipher, dir, core.Cipher()))
	}
	return core, nil
}
