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
	"github.com/rencfs/rencfs/internal/history"
	"github.com/rencfs/rencfs/keyring"
)

type mountFlags struct {
	mountPoint, dataDir, cipher string
	readOnly, allowOther        bool
	umountOnStart               bool
	keyring                     string
	idleTimeout                 time.Duration
	allowSlowKDF                bool
	init                        bool
}

func newMount(a *app) *cobra.Command {
	var f mountFlags
	c := &cobra.Command{
		Use:   "mount --mount-point M --data-dir D",
		Short: "Mount a data dir (creating the store on first use) and serve it until interrupted",
		Long: "Mount serves the store in data dir D at mount point M in the foreground.\n" +
			"An empty or missing D gets a new store, unless D held one before (then --init is needed).\n" +
			"SIGINT or SIGTERM unmounts cleanly.\n" +
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
	fl.BoolVar(&f.init, "init", false, "create a new store even where one was mounted before (a data dir that is now empty)")
	fl.BoolVar(&f.allowSlowKDF, "allow-slow-kdf", false, "accept a header whose Argon2id costs exceed 10 passes, 1 GiB or 16 lanes")
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
	if err := harden(); err != nil {
		return err
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
	opt := encrypted.Options{
		Cipher: cipher, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		KDFLimit: kdfLimit(f.allowSlowKDF), Idle: f.idleTimeout, Log: a.log,
	}
	known, err := history.Default()
	if err != nil {
		a.log.Warn("no state dir: an emptied data dir will not be noticed", "err", err)
	}
	fs, secret, err := unlock(f.dataDir, cmd.Flags().Changed("cipher"), f.init, known, pw, opt, a.log)
	keyring.Wipe(envPw) // not needed again: the mount may last for weeks
	if err != nil {
		return err
	}
	defer memguard.Purge()
	// The keyring keeps the store secret, not the password: it opens this
	// store only, and only until the password changes.
	stored, err := keyring.Store(keyring.OS{}, mode, account, secret, a.log)
	keyring.Wipe(secret)
	if err != nil {
		fs.Close()
		return err
	}
	if stored {
		fs.SetRestore(func() ([]byte, error) { return keyring.OS{}.Get(account) })
		defer func() {
			if err := (keyring.OS{}).Delete(account); err != nil {
				a.log.Warn("could not remove the store secret from the keyring", "err", err)
			}
		}()
	}

	m, err := fusefs.Mount(f.mountPoint, fs, fusefs.Options{ReadOnly: f.readOnly, AllowOther: f.allowOther}, a.log)
	if err != nil {
		fs.Close()
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
	if cerr := fs.Close(); err == nil {
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
// environment or the terminal.
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

// openStorage opens and locks the data dir.
func openStorage(dir string) (*storage.Dir, error) {
	st, err := storage.OpenDir(dir)
	if errors.Is(err, storage.ErrLocked) {
		return nil, withCode(exitStore, fmt.Errorf("%w (unmount it first)", err))
	}
	if err != nil {
		return nil, withCode(exitStore, err)
	}
	return st, nil
}

// unlock opens the store in dir, creating one if dir is missing or
// empty, and returns it with its secret (for the keyring; the caller
// wipes it).
//
// A data dir that held a store before (known lists it) and is now empty
// is refused unless init is set: more likely a cloud folder not synced
// yet or a share not mounted than a wish for a new store, and with the
// password in the environment nothing would ask.
func unlock(dir string, cipherSet, init bool, known history.File, pw passwordSource, opt encrypted.Options, log *slog.Logger) (*encrypted.FS, []byte, error) {
	fresh, err := encrypted.Fresh(dir)
	if err != nil {
		return nil, nil, withCode(exitStore, err)
	}
	if fresh && !init {
		if held, err := known.Has(dir); err != nil {
			return nil, nil, withCode(exitStore, err)
		} else if held {
			return nil, nil, withCode(exitStore, fmt.Errorf("%s held a rencfs store and is now empty or missing "+
				"(a folder not synced yet, a share not mounted?); not creating a new store there without --init", dir))
		}
	}
	if fresh {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, withCode(exitStore, fmt.Errorf("create data dir: %w", err))
		}
	}
	st, err := openStorage(dir)
	if err != nil {
		return nil, nil, err
	}
	fs, secret, err := open(st, dir, fresh, pw, opt, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if c := fs.Cipher(); cipherSet && c != opt.Cipher {
		fs.Close()
		keyring.Wipe(secret)
		return nil, nil, withCode(exitUsage, fmt.Errorf("--cipher %s: the store in %s uses %s", opt.Cipher, dir, c))
	}
	if err := known.Add(dir); err != nil {
		log.Warn("could not remember this data dir: an emptied one would not be noticed", "err", err)
	}
	return fs, secret, nil
}

// open creates or unlocks the store in st. An existing store opens with
// the password from the environment, else with the secret the keyring
// kept since a mount that crashed, else with a password from the terminal.
func open(st *storage.Dir, dir string, fresh bool, pw passwordSource, opt encrypted.Options, log *slog.Logger) (*encrypted.FS, []byte, error) {
	if fresh {
		p, err := pw.fresh()
		if err != nil {
			return nil, nil, err
		}
		defer keyring.Wipe(p)
		fs, secret, err := encrypted.Create(st, p, opt)
		if err != nil {
			return nil, nil, withCode(exitStore, fmt.Errorf("create store in %s: %w", dir, err))
		}
		return fs, secret, nil
	}
	if !pw.fromEnv && pw.kr != nil {
		secret, err := pw.kr.Get(pw.account)
		if err == nil {
			fs, err := encrypted.UnlockSecret(st, secret, opt)
			if err == nil {
				return fs, secret, nil
			}
			keyring.Wipe(secret)
			if !errors.Is(err, encrypted.ErrWrongPassword) {
				return nil, nil, storeError(dir, err)
			}
		}
		if err == nil || errors.Is(err, keyring.ErrStale) {
			// The password was changed since, or an older rencfs wrote it.
			log.Warn("removed a stale keyring entry for this data dir", "data_dir", dir)
			pw.kr.Delete(pw.account)
		}
	}
	p, err := pw.existing()
	if err != nil {
		return nil, nil, err
	}
	defer keyring.Wipe(p)
	fs, secret, err := encrypted.Unlock(st, p, opt)
	if err != nil {
		return nil, nil, storeError(dir, err)
	}
	return fs, secret, nil
}

// storeError words a failure to open the store in dir.
func storeError(dir string, err error) error {
	switch {
	case errors.Is(err, encrypted.ErrNotStore):
		return withCode(exitStore, fmt.Errorf("%s is not a rencfs data dir (and not empty)", dir))
	case errors.Is(err, encrypted.ErrKDFLimit):
		return withCode(exitStore, fmt.Errorf("open %s: %w; --allow-slow-kdf accepts it", dir, err))
	}
	return fmt.Errorf("open %s: %w", dir, err)
}

// kdfLimit is the most a header may ask of Argon2id: the default limit,
// or, when the user vouches for the costs, all the format allows.
func kdfLimit(allowSlow bool) encrypted.KDFParams {
	if allowSlow {
		return encrypted.FormatKDFMax
	}
	return encrypted.DefaultKDFLimit
}
