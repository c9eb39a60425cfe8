# shipit — build, test and demo. `make test` works from a fresh clone on a fresh
# Debian 12 machine as root: scripts/testenv.sh installs what the tests need.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
BIN      := bin/shipit

.PHONY: all build testenv test fmt-check vet bench demo sandbox-down clean api-docs

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/shipit

testenv:
	scripts/testenv.sh

fmt-check:
	@unformatted="$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run gofmt -w):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi

vet:
	$(GO) vet ./...

test: testenv fmt-check vet
	$(GO) test -race -count=1 -timeout 60m -parallel 4 ./...

# Regenerates recipes/shipit.d.lua and the reference in docs/lua-api.md
# from the Go sources (runtime.Globals, HostMembers, each module's Funcs).
api-docs:
	SHIPIT_UPDATE_API=1 $(GO) test -count=1 -run TestGeneratedAPIFilesAreUpToDate ./recipes

# Benchmarks live in e2e/ (deploy timings against sandbox hosts).
bench: testenv
	$(GO) test -run '^$$' -bench . -benchtime 1x ./e2e/...

# Deploys examples/demo behind Traefik to the sandbox host (sshd on
# 127.0.0.1:2222, this machine); run again, deploys the next release under a
# live request counter. Installs only what the demo uses (testenv.sh --demo).
demo:
	scripts/testenv.sh --demo
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/shipit
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demoload ./scripts/demoload
	scripts/sandbox.sh up
	scripts/demo.sh

sandbox-down:
	scripts/sandbox.sh down

clean:
	rm -rf bin/ coverage.out coverage.html *.coverprofile
	$(GO) clean -testcache
