# gretun — userspace GRE and IP-in-IP tunnels.
GO      ?= go
BIN     := bin/gretun
PKGS    := ./...

.PHONY: all build deps test unit demo bench interop fuzz vet clean

all: build

# -buildvcs=auto: `gretun version` names the commit (GOFLAGS may turn it off).
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/gretun

deps:
	./scripts/install-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)

# Everything: unit, fuzz seeds, end-to-end in namespaces, kernel interop.
test: deps vet build
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

# Only the tests that need no privileges.
unit:
	$(GO) test -count=1 -short $(PKGS)

demo: build
	./scripts/install-deps.sh demo
	./$(BIN) demo

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./header ./encap ./decap ./pmtu ./keepalive ./tundev ./tunnel
	./$(BIN) bench --rounds 3

interop: deps
	$(GO) test -count=1 -v ./internal/kpeer ./internal/interop

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecap -fuzztime 60s ./decap
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime 60s ./encap
	$(GO) test -run '^$$' -fuzz FuzzFragment -fuzztime 60s ./tunnel
	$(GO) test -run '^$$' -fuzz FuzzTooBig -fuzztime 60s ./pmtu
	$(GO) test -run '^$$' -fuzz FuzzClampMSS -fuzztime 60s ./pmtu
	$(GO) test -run '^$$' -fuzz FuzzReply -fuzztime 60s ./keepalive
	$(GO) test -run '^$$' -fuzz '^FuzzParseTooBig$$' -fuzztime 60s ./rawsock
	$(GO) test -run '^$$' -fuzz '^FuzzParseTooBig6$$' -fuzztime 60s ./rawsock
	$(GO) test -run '^$$' -fuzz FuzzIPv6EncapLimit -fuzztime 60s ./header
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 60s ./tundev

clean:
	rm -rf bin
