package encrypted

import (
	"errors"
	"fmt"

	"github.com/awnumar/memguard"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// ErrNotDurable: the new header is in place, but the data dir could not
// be synced, so a crash of the machine could still bring back the old
// one. The new password is in force for every program from now on.
var ErrNotDurable = errors.New("the new password is in force, but syncing the data dir failed")

// PasswordChange is a store's master key, unwrapped with the old
// password and ready to be wrapped under a new one. Splitting the change
// lets a caller check the old password before asking for the new one,
// with one key derivation each way.
type PasswordChange struct {
	h      *header
	master *memguard.LockedBuffer
}

// BeginPasswordChange unwraps the master key with the old password:
// ErrWrongPassword if it does not open the store. The header's KDF costs
// must be within opt's limit, as for Unlock.
func BeginPasswordChange(st storage.Storage, oldPassword []byte, opt Options) (*PasswordChange, error) {
	h, err := readHeader(st, opt)
	if err != nil {
		return nil, err
	}
	master, secret, err := h.unwrap(oldPassword)
	if err != nil {
		return nil, err
	}
	secret.Destroy()
	return &PasswordChange{h: h, master: master}, nil
}

// KDF is the store's current Argon2id cost.
func (p *PasswordChange) KDF() KDFParams { return p.h.kdf }

// Commit re-wraps the master key under newPassword, with a fresh salt
// and, if kdf is not nil, new Argon2id costs (within limit; zero: the
// default limit). No data is re-encrypted. The new header is written
// durably and atomically, so after a crash exactly one of the two
// passwords opens the store. ErrNotDurable means the header was replaced
// but the final directory sync failed.
func (p *PasswordChange) Commit(st storage.Storage, newPassword []byte, kdf *KDFParams, limit KDFParams) error {
	nh := *p.h
	if kdf != nil {
		if err := kdf.validate(); err != nil {
			return err
		}
		if err := kdf.within(Options{KDFLimit: limit}.kdfLimit()); err != nil {
			return err
		}
		nh.kdf = *kdf
	}
	secret, err := nh.wrap(newPassword, p.master.Bytes())
	if err != nil {
		return fmt.Errorf("wrap key: %w", err)
	}
	secret.Destroy()
	err = st.PutDurable(HeaderName, nh.encode())
	if errors.Is(err, storage.ErrNotDurable) {
		return fmt.Errorf("%w: %v", ErrNotDurable, err)
	}
	if err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// Close wipes the unwrapped key.
func (p *PasswordChange) Close() { p.master.Destroy() }
