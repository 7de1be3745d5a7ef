package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/keyring"
)

// EnvNewPassword passes the new password to passwd in scripts.
const EnvNewPassword = "RENCFS_NEW_PASSWORD"

type passwdFlags struct {
	dataDir      string
	kdfTime      uint32
	kdfMemory    uint64 // MiB
	allowSlowKDF bool
}

// warnKDFMiB: below this much Argon2id memory, passwd warns that guessing
// gets cheap (GPUs test many passwords in parallel when each needs little memory).
const warnKDFMiB = 64

func newPasswd(a *app) *cobra.Command {
	var f passwdFlags
	c := &cobra.Command{
		Use:   "passwd --data-dir D",
		Short: "Change the password of a store (re-wraps the key; no data is re-encrypted)",
		Long: "Passwd asks for the old password, then the new one twice, and re-wraps the master key.\n" +
			"It takes the same time for any store size. For scripts: " + keyring.EnvPassword + " (old) and\n" +
			EnvNewPassword + " (new). --kdf-time and --kdf-memory re-tune Argon2id on the same occasion.\n" +
			"A mounted store is refused: unmount it first.",
		Example: "  rencfs passwd -d ~/Dropbox/private.rencfs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.passwd(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.dataDir, "data-dir", "d", "", "directory holding the encrypted store")
	fl.Uint32Var(&f.kdfTime, "kdf-time", 0, "new Argon2id passes, 1..10 (default: keep)")
	fl.Uint64Var(&f.kdfMemory, "kdf-memory", 0, "new Argon2id memory in MiB, 8..1024 (default: keep)")
	fl.BoolVar(&f.allowSlowKDF, "allow-slow-kdf", false, "accept Argon2id costs up to 64 passes and 4096 MiB, in the header and in the flags")
	c.MarkFlagRequired("data-dir")
	return c
}

// newKDF is the store's KDF cost with the flags' changes, checked against
// limit before any arithmetic (a MiB count times 1024 could wrap).
func (f passwdFlags) newKDF(cmd *cobra.Command, k, limit encrypted.KDFParams) (*encrypted.KDFParams, error) {
	if !cmd.Flags().Changed("kdf-time") && !cmd.Flags().Changed("kdf-memory") {
		return nil, nil
	}
	if cmd.Flags().Changed("kdf-time") {
		if f.kdfTime < 1 || f.kdfTime > limit.Time {
			return nil, fmt.Errorf("--kdf-time %d out of range 1..%d", f.kdfTime, limit.Time)
		}
		k.Time = f.kdfTime
	}
	if cmd.Flags().Changed("kdf-memory") {
		lo, hi := uint64(encrypted.MinKDFMemoryKiB>>10), uint64(limit.MemoryKiB>>10)
		if f.kdfMemory < lo || f.kdfMemory > hi {
			return nil, fmt.Errorf("--kdf-memory %d MiB out of range %d..%d", f.kdfMemory, lo, hi)
		}
		k.MemoryKiB = uint32(f.kdfMemory << 10)
	}
	return &k, nil
}

func (a *app) passwd(cmd *cobra.Command, f passwdFlags) error {
	oldEnv, oldFromEnv, err1 := keyring.TakeEnv(keyring.EnvPassword)
	newEnv, newFromEnv, err2 := keyring.TakeEnv(EnvNewPassword)
	defer keyring.Wipe(oldEnv)
	defer keyring.Wipe(newEnv)
	if err := errors.Join(err1, err2); err != nil {
		a.log.Warn("a password may remain visible in /proc", "err", err)
	}
	if err := harden(); err != nil {
		return err
	}
	limit := kdfLimit(f.allowSlowKDF)
	if _, err := f.newKDF(cmd, encrypted.DefaultKDF, limit); err != nil {
		return withCode(exitUsage, err) // before any password is asked for
	}
	// The lock refuses a mounted store: its daemon would go on with the
	// old header in memory, and a keyring secret the change kills.
	st, err := openStorage(f.dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	term := keyring.Terminal{In: os.Stdin, Out: os.Stderr}
	oldPw := passwordSource{env: oldEnv, fromEnv: oldFromEnv, term: term}
	newPw := passwordSource{env: newEnv, fromEnv: newFromEnv, term: term}
	old, err := oldPw.existing()
	if err != nil {
		return err
	}
	defer keyring.Wipe(old)
	// The old password is checked before the new one is asked for.
	change, err := encrypted.BeginPasswordChange(st, old, encrypted.Options{KDFLimit: limit})
	if err != nil {
		return storeError(f.dataDir, err)
	}
	defer change.Close()
	kdf, err := f.newKDF(cmd, change.KDF(), limit)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if kdf != nil && kdf.MemoryKiB < warnKDFMiB<<10 {
		a.log.Warn("Argon2id memory below 64 MiB makes password guessing cheaper", "kdf_memory_mib", kdf.MemoryKiB>>10)
	}
	pw, err := newPw.fresh()
	if err != nil {
		return err
	}
	defer keyring.Wipe(pw)
	err = change.Commit(st, pw, kdf, limit)
	if errors.Is(err, encrypted.ErrNotDurable) {
		return fmt.Errorf("%s: the new password is already in force; the old one no longer opens the store, "+
			"but a power loss now could bring it back (%v)", f.dataDir, err)
	}
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	// A secret a crashed mount left in the keyring died with the old
	// password: remove it rather than leave it to the next mount.
	if account, err := keyring.Account(f.dataDir); err == nil {
		if err := (keyring.OS{}).Delete(account); err != nil {
			a.log.Debug("keyring not reachable to remove a leftover secret", "err", err)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "rencfs: password of %s changed\n", f.dataDir)
	return nil
}
