# shipit — build, test and demo. `make test` works from a fresh clone on a fresh
# Debian 12 machine as root: scripts/testenv.sh installs what the tests need.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
BIN      := bin/shipit

.PHONY: all build testenv test fmt-check vet cross bench demo sandbox-down clean api-docs probes

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/shipit

# Rebuilds the health probe embedded in shipit (internal/probe): a static
# binary per host architecture, committed gzipped so that a plain `go build`
# of a fresh clone has it; internal/probe's tests fail when src/ changed
# without a rebuild.
probes:
	cd internal/probe/src && for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w -buildid=' -o ../bin/shipit-probe-linux-$$arch . && \
		gzip -9nf ../bin/shipit-probe-linux-$$arch || exit 1; \
	done
	cd internal/probe && sha256sum src/main.go | cut -c1-64 > bin/SOURCE.sha256

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

# shipit runs from macOS and arm64 machines too (the hosts' health probe is
# embedded for linux/amd64 and linux/arm64 and chosen by the host): these
# builds must keep working.
cross:
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) build -trimpath -o /dev/null ./cmd/shipit
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -o /dev/null ./cmd/shipit

test: testenv fmt-check vet cross
	$(GO) test -race -count=1 -timeout 60m -parallel 4 ./...

# Regenerates recipes/shipit.d.lua and the reference in docs/lua-api.md
# from the Go sources (runtime.Globals, HostMembers, each module's Funcs).
api-docs:
	SHIPIT_UPDATE_API=1 $(GO) test -count=1 -run TestGeneratedAPIFilesAreUpToDate ./recipes

# Benchmarks live in e2e/ (deploy timings against sandbox hosts).
# The benchmarks that compare two builds (own time, fleet deploy) build
# their baseline from BENCH_BASELINE, a commit (default: the previous one);
# `make bench BENCH_BASELINE=` skips the comparison.
BENCH_BASELINE ?= HEAD~1
bench: testenv
	SHIPIT_BENCH_BASELINE='$(BENCH_BASELINE)' $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 90m ./e2e/...

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
