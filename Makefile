# strata: build, demo and test on a fresh Debian machine (run as root).
# Go from PATH, or where the official tarball installs it.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin/strata
DEMO_ROOT ?= /var/lib/strata

.PHONY: all setup deps build demo test lint clean realworld bench

all: build

# deps installs what strata and its tests use from Debian, only when missing:
# runc (the runtime), passt (pasta: container networking), tini (--init),
# busybox-static (the base of test images), docker-registry (a real registry
# for push/pull tests), docker.io, podman and skopeo (interop peers), crun
# (selectable runtime), bsdutils (script: a pty for terminal tests),
# qemu-user-static and binfmt-support (emulated builds for --platform;
# hack/binfmt.sh registers qemu-aarch64 with the kernel).
DEB_PKGS := runc:runc pasta:passt tini:tini busybox:busybox-static \
	docker-registry:docker-registry dockerd:docker.io podman:podman \
	skopeo:skopeo crun:crun script:bsdutils \
	qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support
deps:
	@missing=""; \
	for pair in $(DEB_PKGS); do \
		cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /bin/$$cmd ] || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@./hack/binfmt.sh aarch64 || echo "deps: binfmt_misc emulation not registered (emulated --platform builds will be refused)" >&2

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/strata

setup: deps build

# demo: import a busybox base image made from busybox-static, build the
# example on it, run it, and show the images and the history.
demo: setup
	./hack/busybox-rootfs.sh /tmp/strata-busybox.tar
	$(BIN) --root $(DEMO_ROOT) import -c 'CMD ["/bin/sh"]' -m "busybox-static rootfs" /tmp/strata-busybox.tar busybox:latest
	$(BIN) --root $(DEMO_ROOT) build --progress plain -t hello examples/hello
	$(BIN) --root $(DEMO_ROOT) run --rm hello
	$(BIN) --root $(DEMO_ROOT) images
	$(BIN) --root $(DEMO_ROOT) history hello
	$(BIN) --root $(DEMO_ROOT) info

# lint: go vet, staticcheck (staticcheck.conf) and deadcode (counting
# tests as callers) must all be silent. The tools are pinned and fetched
# from the module proxy on first use.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE    := golang.org/x/tools/cmd/deadcode@v0.52.0
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@out=$$($(GO) run $(DEADCODE) -test ./...); \
	if [ -n "$$out" ]; then echo "$$out"; echo "deadcode: unreachable functions above"; exit 1; fi

# The CLI package runs real containers, registries and daemons: minutes, more
# than go test's default 10-minute limit on a loaded machine.
test: setup lint
	$(GO) test -count=1 -timeout 40m ./...

# realworld: the real-world corpus (examples/realworld) built cold and warm
# with strata and docker side by side, each image checked; needs the Debian
# and npm mirrors (RUN steps download), so it is not part of test.
realworld: setup
	@command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	STRATA=$(CURDIR)/$(BIN) bench/realworld/run.sh

clean:
	rm -rf bin

# bench: every benchmark side by side with docker and podman, all stores on a
# fresh loop-mounted ext4 (without, then with a journal) and then on tmpfs,
# with the machine's limits measured in the same run (bench/all.sh). Needs an
# idle machine; not in CI.
bench: setup
	@command -v hyperfine >/dev/null && command -v pigz >/dev/null && command -v zstd >/dev/null && command -v jq >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine pigz zstd jq >/dev/null)
	bench/all.sh
