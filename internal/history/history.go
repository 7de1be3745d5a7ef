// Package history remembers which data directories held a rencfs store
// for this user, so that a folder found empty (a cloud folder not synced
// yet, a network share not mounted) is not silently made a new store.
//
// The list lives in the user's state directory ($XDG_STATE_HOME/rencfs,
// by default ~/.local/state/rencfs), one absolute path a line, outside
// every data dir: it holds no secret.
package history

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// File is the list of known data dirs. The zero File keeps none: Has
// reports false, Add does nothing.
type File struct{ path string }

// Default is the list in the user's state directory.
func Default() (File, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return File{}, fmt.Errorf("state dir: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return File{path: filepath.Join(dir, "rencfs", "data-dirs")}, nil
}

// At is the list kept in the file p (for tests).
func At(p string) File { return File{path: p} }

// Has reports whether dataDir (made absolute) held a store before.
func (f File) Has(dataDir string) (bool, error) {
	if f.path == "" {
		return false, nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return false, err
	}
	dirs, err := f.read()
	return slices.Contains(dirs, abs), err
}

// Add remembers dataDir, made absolute. The file is replaced atomically.
func (f File) Add(dataDir string) error {
	if f.path == "" {
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	dirs, err := f.read()
	if err != nil || slices.Contains(dirs, abs) {
		return err
	}
	var b bytes.Buffer
	for _, d := range append(dirs, abs) {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".data-dirs-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return os.Rename(tmp.Name(), f.path)
}

func (f File) read() ([]string, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := sc.Text(); filepath.IsAbs(l) {
			dirs = append(dirs, l)
		}
	}
	return dirs, nil
}
