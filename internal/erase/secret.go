//go:build goexperiment.runtimesecret

package erase

import "runtime/secret"

// Do runs f and erases what it leaves behind (see the package doc).
func Do(f func()) { secret.Do(f) }

// Available reports whether Do erases anything in this build.
func Available() bool { return true }
