# gretun — userspace GRE and IP-in-IP tunnels.
GO      ?= go
BIN     := bin/gretun
PKGS    := ./...

.PHONY: all build deps test unit demo bench interop fuzz vet clean install soak

all: build

# -buildvcs=auto: `gretun version` names the commit (GOFLAGS may turn it off).
# CGO_ENABLED=0: without cgo the daemon can drop its capabilities from all
# its threads at once (package privs).
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN) ./cmd/gretun

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
	$(GO) test -run '^$$' -fuzz FuzzParseNeigh -fuzztime 60s ./config
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 60s ./tundev
	$(GO) test -run '^$$' -fuzz FuzzReadRequest -fuzztime 60s ./socks5
	$(GO) test -run '^$$' -fuzz FuzzParseUDP -fuzztime 60s ./socks5
	$(GO) test -run '^$$' -fuzz FuzzParseGRE -fuzztime 60s ./pptp
	$(GO) test -run '^$$' -fuzz FuzzReadMessage -fuzztime 60s ./pptp
	$(GO) test -run '^$$' -fuzz FuzzLinkInput -fuzztime 60s ./ppp

# The soak test for SOAK (default 10 minutes): two daemons, iperf3, 2 %
# loss, changes, reloads and keepalive outages; `make test` runs it for 20 s.
SOAK ?= 10m
soak: deps
	GRETUN_SOAK=$(SOAK) $(GO) test -count=1 -v -run '^TestSoak$$' -timeout 0 ./internal/e2e

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the systemd unit
# (ExecStart pointing at the binary) and the example config; an existing
# /etc/gretun/gretun.conf is never overwritten.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
CONFDIR ?= /etc/gretun

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/gretun
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' dist/gretun.service.in > $(DESTDIR)$(UNITDIR)/gretun.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/gretun.service
	install -m 0644 dist/gretun.conf.example $(DESTDIR)$(CONFDIR)/gretun.conf.example
	test -e $(DESTDIR)$(CONFDIR)/gretun.conf || install -m 0644 dist/gretun.conf.example $(DESTDIR)$(CONFDIR)/gretun.conf

clean:
	rm -rf bin
