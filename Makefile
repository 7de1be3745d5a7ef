# rencfs: build, run a demo, test, benchmark.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
# Fuzz budgets are counts, not durations: Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when a duration
# runs out (golang/go#75804, fixed in Go 1.27); a count has no deadline to
# race. 60,000 runs take about 4 s a target on the 2-core test machine.
FUZZTIME ?= 60000x
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Package managers want a version that starts with a digit and has no dash.
PKG_VERSION := $(shell ./packaging/pkg-version.sh $(VERSION))
LDFLAGS := -s -w -buildid= -X github.com/rencfs/rencfs/cmd.version=$(VERSION)
# runtime/secret (internal/erase) erases the registers, stack and heap that
# the cryptography and plaintext copies use, so that an idle key wipe leaves
# no plaintext behind; it is a Go 1.26 experiment. Every build and test
# here uses it; a build without it works, but erases less.
export GOEXPERIMENT := runtimesecret
# Static and reproducible: no cgo, no local paths, no build id.
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
PREFIX ?= /usr/local
DESTDIR ?=
NFPM_VERSION := v2.45.2

.PHONY: build run test deps fuse lint unit fuzz bench bench-untar fuse-latency install man completions rpm aur package-check docker clean

build:
	$(BUILD) -o rencfs .

# run mounts a demo store: demo/data (encrypted) appears decrypted at demo/mnt.
# It asks for a password (twice the first time), or takes RENCFS_PASSWORD.
run: build fuse
	@mkdir -p demo/mnt
	./rencfs mount --umount-on-start --mount-point demo/mnt --data-dir demo/data

# fuse installs fuse3 when fusermount3 is missing (Debian/Ubuntu, as root).
fuse:
	@command -v fusermount3 >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fuse3 >/dev/null; }

# deps installs what the tests need on a fresh Debian machine (as root):
# git and acl (setfacl) for the FUSE tests, a D-Bus session bus and
# gnome-keyring for the keyring tests (not dbus-x11: it would auto-launch stray buses).
deps: fuse
	@missing=""; \
		command -v git >/dev/null || missing="$$missing git"; \
		command -v setfacl >/dev/null || missing="$$missing acl"; \
		command -v dbus-run-session >/dev/null && command -v dbus-send >/dev/null || missing="$$missing dbus"; \
		command -v gnome-keyring-daemon >/dev/null || missing="$$missing gnome-keyring"; \
		if [ -n "$$missing" ]; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

test: deps lint unit fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# The FUSE tests mount in temporary directories and unmount when done; all
# tests run inside a private D-Bus session with a real gnome-keyring.
unit:
	RENCFS_REQUIRE_ERASE=1 ./scripts/with-keyring.sh $(GO) test -race -count=1 -timeout 20m ./...

# Each decoder's fuzz target, briefly (go test runs one -fuzz target at a
# time; their seed corpora also run as plain tests in unit).
fuzz:
	@for f in FuzzHeader FuzzInode FuzzEntry FuzzChunk; do \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) ./encrypted || exit 1; done

bench:
	$(GO) test -run='^$$' -bench=. ./encrypted/...

# bench-untar times tar -x of Go's source tree through a mount, beside
# gocryptfs when installed, each on a fresh ext4 in a loop file (root).
bench-untar: build fuse
	sh scripts/bench-untar.sh ./rencfs 3

# fuse-latency shows where one such tar -x spends its time, per FUSE
# request type, from the kernel's tracepoints (root, perf).
fuse-latency: build fuse
	sh scripts/fuse-latency.sh ./rencfs

man:
	$(GO) run ./tools/genman man

completions: build
	@mkdir -p dist/completions
	./rencfs completion bash > dist/completions/rencfs.bash
	./rencfs completion zsh > dist/completions/_rencfs
	./rencfs completion fish > dist/completions/rencfs.fish

# install honours PREFIX and DESTDIR (for packagers).
install: build man completions
	install -Dm755 rencfs $(DESTDIR)$(PREFIX)/bin/rencfs
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -Dm644 dist/completions/rencfs.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rencfs
	install -Dm644 dist/completions/_rencfs $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_rencfs
	install -Dm644 dist/completions/rencfs.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/rencfs.fish
	install -Dm644 packaging/systemd/rencfs@.service $(DESTDIR)$(PREFIX)/lib/systemd/user/rencfs@.service

# rpm stages an install under dist/root and packages it with nfpm.
rpm:
	rm -rf dist/root
	$(MAKE) install DESTDIR=$(CURDIR)/dist/root PREFIX=/usr
	@test -x $(GOBIN)/nfpm || $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	RENCFS_VERSION=$(PKG_VERSION) $(GOBIN)/nfpm package -f packaging/nfpm.yaml -p rpm -t dist/

# aur checks that packaging/aur/.SRCINFO matches the PKGBUILD and builds the
# package from a source tarball of this checkout (makepkg refuses root: it
# runs as an unprivileged user).
aur:
	./packaging/aur/check.sh

# package-check builds the RPM and the AUR package and checks what they hold.
package-check: rpm aur
	./packaging/check-rpm.sh dist/rencfs-*.rpm

# docker builds the image (needs a Docker engine); the Dockerfile builds
# with this Makefile.
docker:
	docker build -t rencfs:$(PKG_VERSION) .

clean:
	rm -rf rencfs bin dist man demo
