# Lintel: make run (one demo node), make test (everything), make cluster, make bench, make lint.
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/lintel
GO      ?= go

.PHONY: build browser run test test-unit test-cluster cluster bench lint generate check-generated clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

# One node with demo data in a fresh temp data dir. Ctrl-C stops it.
# HTTP= changes the console's address (default 127.0.0.1:8080).
HTTP ?= 127.0.0.1:8080
run: build
	@dir=$$(mktemp -d -t lintel-run-XXXXXX); \
	./$(BIN) serve --demo --data-dir "$$dir" --node-id demo --building "Demo building" \
		--admin-password lintel-demo --http $(HTTP) >"$$dir/lintel.log" 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid' INT TERM EXIT; \
	for i in $$(seq 50); do curl -sf -o /dev/null http://$(HTTP)/healthz 2>/dev/null && break; \
		kill -0 $$pid 2>/dev/null || { cat "$$dir/lintel.log"; exit 1; }; sleep 0.2; done; \
	printf '\n  Lintel demo is running. Its log: %s/lintel.log\n' "$$dir"; \
	printf '  Console:  http://%s/\n' "$(HTTP)"; \
	printf '  Login:    customer@lintel.local / lintel-demo   (the end customer: sites, cards, credits)\n'; \
	printf '            admin@lintel.local / lintel-demo      (the integrator, a reseller; administers the cluster)\n'; \
	printf '  Readers:  door-1, door-2 on the reader link 127.0.0.1:7100; a simulated phone presents every few seconds.\n'; \
	printf '  Ctrl-C stops it.\n\n'; \
	wait $$pid

# Everything, with the race detector; cluster tests start real processes and
# drive the console in Debian's chromium (installed here when missing).
test: check-generated browser
	$(GO) test -race -count=1 -timeout 25m ./...

browser:
	@command -v chromium >/dev/null || { echo "installing chromium for the console tests"; \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null; }

test-unit:
	$(GO) test -race -count=1 -short ./...

test-cluster:
	$(GO) test -race -count=1 -v -timeout 20m ./cluster-tests/

# Three local nodes joined into one cluster. Ctrl-C stops all three.
cluster: build
	@./scripts/cluster.sh ./$(BIN)

# The figures of SPEC section 9 that exist so far.
# etcd (Debian's etcd-server) is the anchor measured in the same run.
bench: build
	@command -v etcd >/dev/null || { echo "installing etcd-server, the anchor"; apt-get install -y -qq etcd-server >/dev/null 2>&1 || echo "etcd-server could not be installed: the anchor figures are skipped"; }
	LINTEL_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 90m ./cluster-tests/ ./consensus/... ./ui/api/ ./ui/console/ ./reader/
	$(GO) test -run '^$$' -bench 'Decide1M|DecideParallel|VerifyP256' -benchtime 20000x -benchmem -count 1 -timeout 30m ./reader/decide/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...

generate:
	$(GO) tool templ generate

# Generated templ code is committed; fail when it is stale.
check-generated:
	@if ls ui/console/*.templ >/dev/null 2>&1; then \
		$(GO) tool templ generate >/dev/null 2>&1 && \
		git diff --exit-code --stat -- '*_templ.go' || { echo "templ output is stale: run make generate and commit"; exit 1; }; \
	fi

clean:
	rm -rf bin
