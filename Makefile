# Atrax build. Every tool comes from the Go module proxy (go tool) or the npm
# registry; nothing is installed by hand. `make help` lists the targets.

GO        ?= go
BUF       := $(GO) tool -modfile=tools/go.mod buf
PROTODEPS := .build/protodeps
# google/api/{annotations,http}.proto ship in this module's third_party tree.
GOOGLEAPIS_MODULE := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
BIN       := bin/atrax
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: help build run generate protodeps lint test test-short bench bench-micro fmt clean breaking fuzz fuzz-short soak

# Fuzz targets, as PACKAGE:TARGET; each seed corpus is committed under the
# package's testdata/fuzz/TARGET.
FUZZ_TARGETS := \
	./edge/jsonrpc:FuzzDecode \
	./edge/upstream:FuzzRemap \
	./edge/protocol:FuzzHeaderValue \
	./edge/protocol:FuzzCheckParamHeaders \
	./internal/config:FuzzParse \
	./internal/config:FuzzExpand \
	./internal/authn:FuzzVerify \
	./internal/authn:FuzzMatch
# Where `make bench` writes its figures (docs/performance.md quotes
# bench/results/reference.json, a committed copy of one run).
BENCH_OUT ?= bench/results/latest.json
# How long `make fuzz` runs each target; `make test` runs each for 2s.
FUZZTIME ?= 30s
# `make soak`: how long its clients run, how many run at once, and the
# bound on the whole run (the settling after the clients takes a minute or
# two at most). `make test` runs a 20 s soak (TestSoakShort).
SOAK_DURATION ?= 3m
SOAK_CLIENTS  ?= 24
SOAK_TIMEOUT  ?= 30m

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/atrax
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/atrax

run: build ## run Atrax with the example config (examples/atrax.json)
	./$(BIN) serve -f examples/atrax.json

protodeps: ## copy the google/api protos from the Go module cache into .build/protodeps
	@$(GO) mod download $(GOOGLEAPIS_MODULE)
	@dir=$$($(GO) list -m -f '{{.Dir}}' $(GOOGLEAPIS_MODULE)) && \
	  mkdir -p $(PROTODEPS)/google/api && \
	  install -m 0644 $$dir/third_party/googleapis/google/api/annotations.proto \
	    $$dir/third_party/googleapis/google/api/http.proto $(PROTODEPS)/google/api/

generate: protodeps ## regenerate gen/ from proto/ (offline, buf through go tool)
	rm -rf gen
	$(BUF) generate

lint: protodeps ## buf lint (STANDARD), buf format check, go vet, gofmt
	$(BUF) lint
	$(BUF) format proto --diff --exit-code
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

breaking: protodeps ## buf breaking against the previous commit of main, when there is one
	./.ci/breaking.sh

test: ## run every test with -race (installs the npm test peers and Node 22 itself), then a short fuzz run
	$(GO) test -race -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz-short

fuzz: ## run each fuzz target for FUZZTIME (default 30s); a failing input lands in testdata/fuzz
	GO=$(GO) ./.ci/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

fuzz-short: ## run each fuzz target for 2s (part of make test)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2s

soak: ## SOAK_CLIENTS clients for SOAK_DURATION (3m) while servers are killed; then back to the baseline
	ATRAX_SOAK_DURATION=$(SOAK_DURATION) ATRAX_SOAK_CLIENTS=$(SOAK_CLIENTS) \
	  $(GO) test -count=1 -v -run '^TestSoak$$' -timeout $(SOAK_TIMEOUT) ./test/e2e

bench: build ## measure Atrax against direct calls (about 5 min on 2 cores): a table, and BENCH_OUT as JSON
	$(GO) build -o bench/bin/benchserver ./bench/cmd/benchserver
	$(GO) build -o bench/bin/atraxbench ./bench/cmd/atraxbench
	./bench/bin/atraxbench -atrax $(BIN) -server bench/bin/benchserver -out $(BENCH_OUT) -profiles bench/results

bench-micro: ## the hot path's Go benchmarks (routing, id remapping, JSON-RPC, tokens), with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./edge/router ./edge/upstream ./edge/jsonrpc ./internal/authn ./internal/workpool

test-short: ## unit tests only, no processes or npm
	$(GO) test -short -count=1 ./...

fmt: ## gofmt and buf format in place
	gofmt -w $$(git ls-files '*.go' | grep -v '^gen/')
	$(BUF) format proto -w

clean: ## remove build output
	rm -rf bin .build
