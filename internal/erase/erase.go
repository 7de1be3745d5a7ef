// Package erase runs code that handles secrets so that the temporaries
// it leaves are erased: the registers and stack it used as soon as it
// returns, the heap it allocated as soon as the garbage collector frees
// it. Go's AEAD assembly copies plaintext and key state onto the stack,
// and HMAC keeps key-derived pads on the heap; without this they would
// stay in the process after the key wipe.
//
// It is runtime/secret, which exists in builds made with
// GOEXPERIMENT=runtimesecret (the Makefile's, on linux/amd64 and arm64);
// elsewhere Do just calls f, and Available says so.
package erase
