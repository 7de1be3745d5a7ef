//go:build !goexperiment.runtimesecret

package erase

// Do runs f. This build has no runtime/secret: nothing is erased.
func Do(f func()) { f() }

// Available reports whether Do erases anything in this build.
func Available() bool { return false }
