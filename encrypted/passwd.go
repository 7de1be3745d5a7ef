package encrypted

import (
	"fmt"

	"github.com/rencfs/rencfs/encrypted/storage"
)

// PasswordChange is a store's master key, unwrapped with the old
// password and ready to be wrapped under a new one. Splitting the change
// lets a caller check the old password before asking for the new one,
// with one key derivation each way.
type PasswordChange struct {
	h      *header
	master []byte
}

// BeginPasswordChange unwraps the master key with the old password:
// ErrWrongPassword if it does not open the store.
func BeginPasswordChange(st storage.Storage, oldPassword []byte) (*PasswordChange, error) {
	h, err := readHeader(st)
	if err != nil {
		return nil, err
	}
	master, err := h.unwrap(oldPassword)
	if err != nil {
		return nil, err
	}
	return &PasswordChange{h: h, master: master}, nil
}

// KDF is the store's current Argon2id cost.
func (p *PasswordChange) KDF() KDFParams { return p.h.kdf }

// Commit re-wraps the master key under newPassword, with a fresh salt
// and, if kdf is not nil, new Argon2id costs. No data is re-encrypted. The
// new header is written durably and atomically, so after a crash exactly
// one of the two passwords opens the store.
func (p *PasswordChange) Commit(st storage.Storage, newPassword []byte, kdf *KDFParams) error {
	nh := *p.h
	if kdf != nil {
		if err := kdf.validate(); err != nil {
			return err
		}
		nh.kdf = *kdf
	}
	if err := nh.wrap(newPassword, p.master); err != nil {
		return fmt.Errorf("wrap key: %w", err)
	}
	if err := st.PutDurable(HeaderName, nh.encode()); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// Close wipes the unwrapped key.
func (p *PasswordChange) Close() { clear(p.master) }

// ChangePassword is BeginPasswordChange and Commit in one.
func ChangePassword(st storage.Storage, oldPassword, newPassword []byte, kdf *KDFParams) error {
	p, err := BeginPasswordChange(st, oldPassword)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Commit(st, newPassword, kdf)
}
