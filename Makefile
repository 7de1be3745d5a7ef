# rencfs: build, run a demo, test, benchmark.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 5s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rencfs/rencfs/cmd.version=$(VERSION)
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: build run test deps fuse lint unit fuzz bench clean

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
# git for the FUSE tests, a D-Bus session bus and gnome-keyring for the
# keyring tests (not dbus-x11: it would auto-launch stray buses).
deps: fuse
	@missing=""; \
		command -v git >/dev/null || missing="$$missing git"; \
		command -v dbus-run-session >/dev/null || missing="$$missing dbus"; \
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
	./scripts/with-keyring.sh $(GO) test -race -count=1 -timeout 20m ./...

# Each decoder's fuzz target, briefly (go test runs one -fuzz target at a time).
fuzz:
	@for f in FuzzHeader FuzzInode FuzzEntry FuzzChunk; do \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) ./encrypted || exit 1; done

bench:
	$(GO) test -run='^$$' -bench=. ./encrypted/...

clean:
	rm -rf rencfs bin dist man demo
