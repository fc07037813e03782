# Catga for Go. `make test` is what CI runs (.ci/run calls it).
GO        ?= go
MODULES   := . examples/order-service deploy bench
PKGS_RACE ?= ./...
BENCHTIME ?= 1s
COUNT     ?= 1
TAG       ?= dev

.PHONY: run test test-race lint build bench bench-quick bench-scale bench-schedule bench-micro tidy deps image image-test k8s-e2e deploy-validate

## run: the example monolith on :8080 (HTTP_ADDR overrides)
# Built, then run by a shell that outlives it: Ctrl-C (a clean stop, exit
# 0) is no error to make. go run would exit 1 after any signal; and a child
# that exits the instant make takes the SIGINT trips make's own race ("wait:
# No child processes"), so the shell's trap lingers a moment after it.
run:
	cd examples/order-service && $(GO) build -o ../../bin/monolith ./cmd/monolith
	trap 'sleep 0.3' INT; HTTP_ADDR=$${HTTP_ADDR:-:8080} LOG_FORMAT=$${LOG_FORMAT:-console} bin/monolith

## test: lint, then every test of every module, with the race detector.
## NATS runs embedded in the tests; redis-server and the PostgreSQL server
## are installed if missing (each suite starts its own on a free port).
test: lint deps
	@set -e; for m in $(MODULES); do echo "== go test $$m"; (cd $$m && $(GO) test -race -count=1 -timeout 20m ./...); done

## deps: what the tests need besides Go (redis-server, PostgreSQL, headless Chromium)
deps:
	@scripts/ensure-deps

## test-race: the tests five times over, to shake out flakes
test-race: deps
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -race -count=5 -timeout 30m ./...); done

## lint: gofmt and go vet on every module
lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	cd deploy && $(GO) vet -tags imagetest . && $(GO) vet -tags k8se2e .

## build: every package, and the example binaries into bin/
build:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) build ./...); done
	cd examples/order-service && $(GO) build -o ../../bin/ ./cmd/...

## image: the example services' images, catga/<service>:$(TAG), into bin/images, with no
## Docker daemon: <service>.docker-archive.tar (docker load -i, kind load image-archive) and
## <service>.oci (an OCI image layout: skopeo, crane, podman). make image TAG=1.0.0 for the
## prod overlay, which pins 1.0.0.
image:
	cd deploy && $(GO) run ./cmd/image -out ../bin/images -src ../examples/order-service -tag $(TAG)

## image-test: every image (the four services, and NATS and Redis built here
## with no base image) loaded into podman and run as the dev overlay's
## manifests run it: non-root, read-only root, capabilities dropped, their
## environment, on a network where they reach each other by Service name;
## /health and /ready, orders end to end, podman stop exits 0 within the
## grace period; a catga new service through the same. Installs podman and
## runc when missing. Not part of make test.
image-test: deps
	@scripts/ensure-podman
	cd deploy && $(GO) test -tags imagetest -run TestImages -count=1 -timeout 20m -v .

## k8s-e2e: a real single-node Kubernetes (scripts/k8s-build from the module
## proxy, once; scripts/k8s-node in its own network namespace), the API
## server's dry run of both overlays and a new service's manifests, then the
## dev overlay with every image side-loaded: pods Ready through their
## probes, orders through the order-service Service, a payment pod deleted
## mid-traffic, a rolling update of order-service, the HPAs and PDBs; then
## the node torn down leaving nothing. Not part of make test.
k8s-e2e: deps
	@scripts/ensure-k8s
	cd deploy && $(GO) test -tags k8se2e -run TestKubernetes -count=1 -timeout 60m -v .

## deploy-validate: kustomize builds (deploy/ and a new service's), strict decoding, labels,
## probes and ports, NATS configs run in nats-server, images, Dockerfile, docs
deploy-validate:
	cd deploy && $(GO) test -count=1 ./...

## bench: every side-by-side comparison (bench/), 6 rounds for benchstat,
## into bench/results.txt, and the ratio table into bench/ratios.md. Each
## round runs every contender once, one after the other (go test -count 6
## would run one contender 6 times, then the next): a contender's runs and
## its rival's are interleaved, so a drift of the machine lands on both.
BENCH_ROUNDS ?= 6
bench: deps
	cd bench && $(GO) test -c -o bench.test . && : > results.txt && \
	for i in $$(seq $(BENCH_ROUNDS)); do ./bench.test -test.run '^$$' -test.bench . -test.benchmem -test.count 1 -test.timeout 60m | tee -a results.txt; done
	cd bench && $(GO) run ./cmd/ratios < results.txt | tee ratios.md

## bench-quick: the same, one short run each (under five minutes)
bench-quick: deps
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 1 -benchtime 20000x -timeout 10m | tee results-quick.txt
	cd bench && $(GO) run ./cmd/ratios < results-quick.txt

## bench-scale: 10 services x 2 instances x 200 event types on one
## nats-server and one redis-server, watched idle for CATGA_SCALE_IDLE
## (60s): consumers, start time, idle CPU, idle messages, memory
bench-scale: deps
	cd bench && $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./scale/ | tee results-scale.txt

## bench-schedule: scheduled messages (PublishAt) on memory, NATS (both
## ways) and Redis: schedules per second and how late they arrive.
bench-schedule: deps
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -benchtime 10000x -count 3 -timeout 10m ./schedule/ | tee results-schedule.txt

## bench-micro: the package benchmarks of cqrs, natsmod, redismod and pgmod
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./cqrs/... ./modules/natsmod/ ./modules/redismod/ ./modules/pgmod/

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done
