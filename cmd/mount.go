package cmd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/awnumar/memguard"
	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
	"github.com/rencfs/rencfs/fusefs"
	"github.com/rencfs/rencfs/keyring"
)

type mountFlags struct {
	mountPoint, dataDir, cipher string
	readOnly, allowOther        bool
	umountOnStart               bool
	keyring                     string
	idleTimeout                 time.Duration
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
	fl.StringVar(&f.keyring, "keyring", "auto", "keep the password in the OS keyring while mounted: auto, always or never")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 5*time.Minute, "wipe the key from memory after this long without activity (0: never)")
	c.MarkFlagRequired("mount-point")
	c.MarkFlagRequired("data-dir")
	return c
}

// minServeProcs is the fewest Ps (GOMAXPROCS) a mount serves with.
const minServeProcs = 8

// serveProcs is the GOMAXPROCS to serve with, given the GOMAXPROCS
// environment variable and the current setting. Each go-fuse reader
// blocked in read(2) on /dev/fuse holds its P through the system call,
// and go-fuse sizes its pool of readers by GOMAXPROCS when the server
// starts. With one P per CPU (2 on a small machine) the blocked readers
// soon hold every P, so the runtime takes Ps back and hands them from
// thread to thread on most requests: a futex wake and a thread switch
// each time. It also takes back the P of a reader blocked for over 10 ms,
// which keeps its monitor thread waking every 20 µs; more readers, more
// of that. So the mount raises GOMAXPROCS once the server runs: Ps to
// spare, readers as before. Extracting Go's source tree on 2 CPUs, the
// daemon made 25,000 futex calls and 275,000 context switches with 2 Ps,
// 7,000 and 241,000 with 8 Ps and 8 readers, 6,000 and 222,000 with 8 Ps
// and 2 readers (and 8.6 s of CPU against 10.0 s). A GOMAXPROCS the user
// set wins.
func serveProcs(env string, current int) int {
	if env != "" {
		return current
	}
	return max(current, minServeProcs)
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

	mode, err := keyring.ParseMode(f.keyring)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.idleTimeout < 0 {
		return withCode(exitUsage, fmt.Errorf("--idle-timeout %v is negative", f.idleTimeout))
	}
	account, err := keyring.Account(f.dataDir)
	if err != nil {
		return withCode(exitStore, err)
	}
	var kr keyring.Keyring
	if mode != keyring.Never {
		kr = keyring.OS{}
	}
	pw := passwordSource{env: envPw, fromEnv: fromEnv, term: keyring.Terminal{In: os.Stdin, Out: os.Stderr}, kr: kr, account: account}
	h, password, err := unlock(f.dataDir, cipher, cmd.Flags().Changed("cipher"), pw, keyring.HolderOptions{Idle: f.idleTimeout, Log: a.log}, a.log)
	if err != nil {
		return err
	}
	defer memguard.Purge()
	stored, err := keyring.Store(keyring.OS{}, mode, account, password, a.log)
	keyring.Wipe(password)
	if err != nil {
		h.Close()
		return err
	}
	if stored {
		h.UseKeyring(func() ([]byte, error) { return keyring.OS{}.Get(account) })
		defer func() {
			if err := (keyring.OS{}).Delete(account); err != nil {
				a.log.Warn("could not remove the password from the keyring", "err", err)
			}
		}()
	}

	m, err := fusefs.Mount(f.mountPoint, h.FS(), fusefs.Options{ReadOnly: f.readOnly, AllowOther: f.allowOther}, a.log)
	if err != nil {
		h.Close()
		return withCode(exitMount, err)
	}
	// Only now that the server runs: see serveProcs.
	runtime.GOMAXPROCS(serveProcs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)))
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
	if cerr := h.Close(); err == nil {
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
	kr      keyring.Keyring // nil: do not look there
	account string
}

// existing returns the password of an existing store: from the
// environment, the OS keyring (a remount after a crash, say) or the
// terminal. fromKeyring says where it came from.
func (p passwordSource) existing() (pw []byte, fromKeyring bool, err error) {
	if p.fromEnv {
		return append([]byte(nil), p.env...), false, nil
	}
	if p.kr != nil {
		if pw, err := p.kr.Get(p.account); err == nil {
			return pw, true, nil
		}
	}
	pw, err = p.term.Read("Password: ")
	return pw, false, err
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

// unlock opens the store in dir, creating one if dir is missing or
// empty, and returns its key holder and the password that opened it (for
// the keyring; the caller wipes it).
func unlock(dir string, cipher encrypted.Cipher, cipherSet bool, pw passwordSource, opt keyring.HolderOptions, log *slog.Logger) (*keyring.Holder, []byte, error) {
	fresh, err := encrypted.Fresh(dir)
	if err != nil {
		return nil, nil, withCode(exitStore, err)
	}
	if fresh {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, withCode(exitStore, fmt.Errorf("create data dir: %w", err))
		}
	}
	st, err := storage.OpenDir(dir)
	if fresh && err == nil {
		// A new store: its key goes straight to the holder, one derivation.
		var p []byte
		if p, err = pw.fresh(); err != nil {
			return nil, nil, err
		}
		master, err := encrypted.InitKey(st, p, encrypted.Options{Cipher: cipher, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
		if err != nil {
			keyring.Wipe(p)
			return nil, nil, withCode(exitStore, fmt.Errorf("create store in %s: %w", dir, err))
		}
		h, err := keyring.UnlockKey(st, master, opt)
		if err != nil {
			keyring.Wipe(p)
			return nil, nil, err
		}
		return h, p, nil
	}
	if err != nil {
		return nil, nil, withCode(exitStore, err)
	}
	p, fromKeyring, err := pw.existing()
	if err != nil {
		return nil, nil, err
	}
	h, err := keyring.Unlock(st, p, opt)
	if errors.Is(err, encrypted.ErrWrongPassword) && fromKeyring {
		// A stale entry (the password was changed since): drop it and ask.
		log.Warn("the keyring's password for this data dir is stale; removed it", "data_dir", dir)
		pw.kr.Delete(pw.account)
		keyring.Wipe(p)
		if p, err = pw.term.Read("Password: "); err != nil {
			return nil, nil, err
		}
		h, err = keyring.Unlock(st, p, opt)
	}
	if err != nil {
		keyring.Wipe(p)
		if errors.Is(err, encrypted.ErrNotStore) {
			return nil, nil, withCode(exitStore, fmt.Errorf("%s is not a rencfs data dir (and not empty)", dir))
		}
		return nil, nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if c := h.FS().Cipher(); cipherSet && c != cipher {
		h.Close()
		keyring.Wipe(p)
		return nil, nil, withCode(exitUsage, fmt.Errorf("--cipher %s: the store in %s uses %s", cipher, dir, c))
	}
	return h, p, nil
}
