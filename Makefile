# rencfs: build, run a demo, test, benchmark.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 5s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/rencfs/rencfs/cmd.version=$(VERSION)
BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: build run test deps lint unit fuzz bench clean

build:
	$(BUILD) -o rencfs .

# deps installs what the tests need on a fresh Debian machine (as root).
deps:
	@if ! command -v fusermount3 >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fuse3 >/dev/null; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

test: deps lint unit fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

unit:
	$(GO) test -race -count=1 ./...

# Each decoder's fuzz target, briefly (go test runs one -fuzz target at a time).
fuzz:
	@for f in FuzzHeader FuzzInode FuzzEntry FuzzChunk; do \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) ./encrypted || exit 1; done

bench:
	$(GO) test -run='^$$' -bench=. -benchtime=3x ./encrypted

clean:
	rm -rf rencfs bin dist man demo
