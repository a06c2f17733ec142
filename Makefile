# strata: build, demo and test on a fresh Debian machine (run as root).
GO      ?= go
BIN     := bin/strata
DEMO_ROOT ?= /var/lib/strata
APT_PKGS := busybox-static runc docker-registry

.PHONY: all setup deps build demo test vet clean

all: build

# deps installs what strata and its tests use from Debian, only when missing.
deps:
	@missing=""; \
	command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	command -v runc >/dev/null 2>&1 || missing="$$missing runc"; \
	command -v docker-registry >/dev/null 2>&1 || missing="$$missing docker-registry"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

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

test: setup
	$(GO) vet ./...
	$(GO) test -count=1 ./...

clean:
	rm -rf bin
