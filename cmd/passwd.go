package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/encrypted"
	"github.com/rencfs/rencfs/encrypted/storage"
	"github.com/rencfs/rencfs/keyring"
)

// EnvNewPassword passes the new password to passwd in scripts.
const EnvNewPassword = "RENCFS_NEW_PASSWORD"

type passwdFlags struct {
	dataDir   string
	kdfTime   uint32
	kdfMemory uint32 // MiB
}

func newPasswd(a *app) *cobra.Command {
	var f passwdFlags
	c := &cobra.Command{
		Use:   "passwd --data-dir D",
		Short: "Change the password of a store (re-wraps the key; no data is re-encrypted)",
		Long: "Passwd asks for the old password, then the new one twice, and re-wraps the master key.\n" +
			"It takes the same time for any store size. For scripts: " + keyring.EnvPassword + " (old) and\n" +
			EnvNewPassword + " (new). --kdf-time and --kdf-memory re-tune Argon2id on the same occasion.",
		Example: "  rencfs passwd -d ~/Dropbox/private.rencfs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.passwd(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.dataDir, "data-dir", "d", "", "directory holding the encrypted store")
	fl.Uint32Var(&f.kdfTime, "kdf-time", 0, "new Argon2id passes (default: keep)")
	fl.Uint32Var(&f.kdfMemory, "kdf-memory", 0, "new Argon2id memory in MiB (default: keep)")
	c.MarkFlagRequired("data-dir")
	return c
}

func (a *app) passwd(cmd *cobra.Command, f passwdFlags) error {
	oldEnv, oldFromEnv, err1 := keyring.TakeEnv(keyring.EnvPassword)
	newEnv, newFromEnv, err2 := keyring.TakeEnv(EnvNewPassword)
	defer keyring.Wipe(oldEnv)
	defer keyring.Wipe(newEnv)
	if err := errors.Join(err1, err2); err != nil {
		a.log.Warn("a password may remain visible in /proc", "err", err)
	}
	st, err := storage.OpenDir(f.dataDir)
	if err != nil {
		return withCode(exitStore, err)
	}
	term := keyring.Terminal{In: os.Stdin, Out: os.Stderr}
	oldPw := passwordSource{env: oldEnv, fromEnv: oldFromEnv, term: term}
	newPw := passwordSource{env: newEnv, fromEnv: newFromEnv, term: term}
	old, _, err := oldPw.existing()
	if err != nil {
		return err
	}
	defer keyring.Wipe(old)
	// The old password is checked before the new one is asked for.
	change, err := encrypted.BeginPasswordChange(st, old)
	if err != nil {
		if errors.Is(err, encrypted.ErrNotStore) {
			return withCode(exitStore, fmt.Errorf("%s is not a rencfs data dir", f.dataDir))
		}
		return fmt.Errorf("open %s: %w", f.dataDir, err)
	}
	defer change.Close()
	var kdf *encrypted.KDFParams
	if cmd.Flags().Changed("kdf-time") || cmd.Flags().Changed("kdf-memory") {
		k := change.KDF()
		if f.kdfTime != 0 {
			k.Time = f.kdfTime
		}
		if f.kdfMemory != 0 {
			k.MemoryKiB = f.kdfMemory * 1024
		}
		kdf = &k
	}
	pw, err := newPw.fresh()
	if err != nil {
		return err
	}
	defer keyring.Wipe(pw)
	if err := change.Commit(st, pw, kdf); err != nil {
		return withCode(exitUsage, fmt.Errorf("change password: %w", err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "rencfs: password of %s changed\n", f.dataDir)
	return nil
}
