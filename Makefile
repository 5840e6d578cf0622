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

.PHONY: help build run generate protodeps lint test test-short bench fmt clean breaking fuzz fuzz-short

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
# How long `make fuzz` runs each target; `make test` runs each for 2s.
FUZZTIME ?= 30s

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

test-short: ## unit tests only, no processes or npm
	$(GO) test -short -count=1 ./...

fmt: ## gofmt and buf format in place
	gofmt -w $$(git ls-files '*.go' | grep -v '^gen/')
	$(BUF) format proto -w

clean: ## remove build output
	rm -rf bin .build
