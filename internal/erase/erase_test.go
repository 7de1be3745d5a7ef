package erase

import (
	"os"
	"testing"
)

func TestDo(t *testing.T) {
	ran := false
	Do(func() { ran = true })
	if !ran {
		t.Fatal("f did not run")
	}
	// make test builds with the experiment: a build that silently lost it
	// would keep secrets in memory.
	if os.Getenv("RENCFS_REQUIRE_ERASE") != "" && !Available() {
		t.Fatal("built without GOEXPERIMENT=runtimesecret")
	}
}
