# vrouter: userspace IPv4 router. `make demo` and `make test` need root (network namespaces).
GO        ?= go
BIN       := bin/vrouter
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
# Debian packages the tests and the demo use, as "command:package".
TOOLS := ip:iproute2 ping:iputils-ping arping:iputils-arping traceroute:traceroute \
         tracepath:iputils-tracepath iperf3:iperf3 tcpdump:tcpdump socat:socat nft:nftables \
         ethtool:ethtool netsniff-ng:netsniff-ng tmux:tmux curl:curl nmap:nmap \
         dnsmasq:dnsmasq-base bird:bird2 birdc:bird2 udhcpc:udhcpc dig:bind9-dnsutils \
         keepalived:keepalived
.PHONY: all build build-race test unit e2e race-e2e demo bench soak soak-udp fuzz lint deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vrouter

# vrouter with the race detector (needs cgo), for race-e2e.
RACE_BIN := bin/vrouter-race
build-race:
	CGO_ENABLED=1 $(GO) build -race -trimpath -ldflags '$(LDFLAGS)' -o $(RACE_BIN) ./cmd/vrouter

# Install the Debian tools that are missing (apt-get update once, then install).
deps:
	@missing=""; \
	for t in $(TOOLS); do cmd=$${t%%:*}; pkg=$${t#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || missing="$$missing python3-scapy"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing tools:$$missing (run as root to install)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Unit, pipeline and end-to-end tests (the end-to-end ones need root; in CI they must run),
# the end-to-end ones with a 30 s soak (TestSoak); then the data-path packages and the NAT and
# reload end-to-end tests under the race detector.
test: deps lint build
	VROUTER_SOAK=$${VROUTER_SOAK:-30s} $(GO) test -count=1 -timeout 11m $(PKGS)
	$(GO) test -count=1 -race -short -timeout 5m ./router/... ./arp/... ./fib/... ./nat/...
	$(MAKE) race-e2e

# The NAT and reload end-to-end tests (RACE_TESTS) with vrouter built with -race, on the
# afpacket driver: a race stops the router (halt_on_error) and its report fails the target.
RACE_TESTS ?= ^(TestNAT|TestReload|TestFaultReloadDuringFlood)
RACE_LOGS  := $(CURDIR)/bin/race-logs
race-e2e: build-race
	rm -rf $(RACE_LOGS) && mkdir -p $(RACE_LOGS)
	GORACE="halt_on_error=1 log_path=$(RACE_LOGS)/race" VROUTER_RACE=1 VROUTER_BIN=$(CURDIR)/$(RACE_BIN) VROUTER_TEST_DRIVERS=afpacket \
	  $(GO) test -count=1 -timeout 5m -run '$(RACE_TESTS)' ./test/
	@if ls $(RACE_LOGS)/race* >/dev/null 2>&1; then echo "data races found:"; cat $(RACE_LOGS)/race*; exit 1; fi
	@echo "race-e2e: no data race reported"

unit:
	$(GO) test -count=1 -short $(PKGS)

e2e: deps build
	$(GO) test -count=1 -v -timeout 9m ./test/...

demo: deps build
	$(GO) run ./test/demo

# Micro-benchmarks, then the system benchmark (root): the Linux kernel against vrouter with
# each driver in BENCH_DRIVERS (a driver whose ports do not open is skipped), about 2.5 min per router;
# writes bench/results/latest.{json,txt,png} and profile-<driver>.pprof. The README's table:
# go run ./bench -table.
BENCH_DRIVERS ?= afpacket,afpacket:w1,afxdp,afxdp:s
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./router/... ./fib/... ./arp/... ./nat/... ./packet/...
	$(GO) run ./bench -drivers $(BENCH_DRIVERS)

# The mixed-traffic soak (test/soak_test.go: TCP and UDP streams, short connections, ping,
# fragments, SNAT churn, runtime routes, a reload every 10 s) for SOAK; heap, RSS, goroutines,
# sessions, neighbours and FIB memory sampled every 2 s and judged against their baseline;
# writes bench/results/soak-mixed.{json,txt,png}. `make test` runs it for 30 s.
SOAK ?= 10m
soak: deps build
	VROUTER_SOAK=$(SOAK) VROUTER_SOAK_OUT=$(CURDIR)/bench/results $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./test/

# The 64-byte UDP load through vrouter (first driver of BENCH_DRIVERS) for SOAK, RSS and
# goroutines/threads sampled every 10 s; writes bench/results/soak.json.
soak-udp: deps build
	$(GO) run ./bench -soak $(SOAK) -drivers $(BENCH_DRIVERS)

FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime=100x $$pkg || exit 1; \
	  done; done

clean:
	rm -rf bin
