# The NER toolchain: build, test, demo, bench, install.
#   make demo   set up everything and run the pipeline end to end on the shipped example data
#   make test   run the test suite

SWIFT     ?= swift
CONFIG    ?= release
PREFIX    ?= /usr/local
DEMO_HOME ?= $(CURDIR)/.demo-home
TOOLS     := ner-queue ner-dispatch ner-train ner-pack ner-register ner-infer ner-serve
APT_PKGS  := libopenblas-dev libsqlite3-dev libarchive-dev zstd
TEST_PKGS := strace
SWIFTFLAGS := -c $(CONFIG)

.PHONY: all deps build test test-asan test-tsan demo bench cuda-kernels install clean

all: build

# Installs the C libraries with apt-get when missing (needs root or sudo).
deps:
	@missing=""; for p in $(APT_PKGS) $(if $(filter test,$(MAKECMDGOALS)),$(TEST_PKGS)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Builds the seven tools and links them into bin/, so PATH=$PWD/bin:$PATH works.
build: deps
	$(SWIFT) build $(SWIFTFLAGS)
	@mkdir -p bin
	@dir=$$($(SWIFT) build $(SWIFTFLAGS) --show-bin-path); \
	for t in $(TOOLS); do ln -sf "$$dir/$$t" bin/$$t; done
	@echo "tools in $(CURDIR)/bin"

# The tests use only public APIs, so testable imports stay off and the release build is reused.
test: build
	$(SWIFT) test $(SWIFTFLAGS) --disable-testable-imports

# The suite with every tool and test built under AddressSanitizer or ThreadSanitizer, in their own
# build folders; FILTER=regex runs part of it (make test-tsan FILTER='ServeTests|InferTests').
SANITIZE_TEST = $(SWIFT) test $(SWIFTFLAGS) --sanitize=$(1) --build-path .build-$(2) --disable-testable-imports $(if $(FILTER),--filter '$(FILTER)')
test-asan: deps
	ASAN_OPTIONS=detect_leaks=0 $(call SANITIZE_TEST,address,asan)
test-tsan: deps
	TSAN_OPTIONS=halt_on_error=0 $(call SANITIZE_TEST,thread,tsan)

# Queue -> dispatch (train | pack | register) -> infer, on examples/data, in a fresh home.
demo: build
	rm -rf "$(DEMO_HOME)"
	$(MAKE) -C examples NER_HOME="$(DEMO_HOME)" BIN="$(CURDIR)/bin" demo

bench: build
	@for b in bench/*.sh; do echo "== $$b"; BIN="$(CURDIR)/bin" bash "$$b" || exit 1; done

# NVIDIA's compilers (from PyPI) on the CUDA kernels; no GPU needed.
cuda-kernels:
	bash bench/cuda-kernels.sh

install: build
	install -d "$(PREFIX)/bin"
	for t in $(TOOLS); do install -m 0755 "$$(readlink -f bin/$$t)" "$(PREFIX)/bin/$$t"; done

clean:
	rm -rf .build .build-asan .build-tsan bin/ner-* "$(DEMO_HOME)"
