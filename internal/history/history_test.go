package history

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHistory(t *testing.T) {
	f := At(filepath.Join(t.TempDir(), "state", "rencfs", "data-dirs"))
	data := t.TempDir()
	if has, err := f.Has(data); has || err != nil {
		t.Fatalf("empty list: %v %v", has, err)
	}
	for range 2 { // the second Add changes nothing
		if err := f.Add(data); err != nil {
			t.Fatal(err)
		}
	}
	other := t.TempDir()
	if err := f.Add(other); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.path)
	if err != nil || string(b) != data+"\n"+other+"\n" {
		t.Fatalf("file %q %v", b, err)
	}
	// A relative path names the same directory.
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	os.Chdir(filepath.Dir(data))
	if has, err := f.Has(filepath.Base(data)); !has || err != nil {
		t.Fatalf("relative path: %v %v", has, err)
	}
	if fi, err := os.Stat(filepath.Dir(f.path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode: %v %v", fi.Mode(), err)
	}
}

func TestDefaultFollowsXDG(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	f, err := Default()
	if err != nil || f.path != "/x/state/rencfs/data-dirs" {
		t.Fatalf("%q %v", f.path, err)
	}
}

func TestZeroFileKeepsNothing(t *testing.T) {
	var f File
	if err := f.Add(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if has, err := f.Has(t.TempDir()); has || err != nil {
		t.Fatalf("%v %v", has, err)
	}
}
