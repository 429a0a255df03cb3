# The NER toolchain: build, test, demo, bench, install.
#   make demo   set up everything and run the pipeline end to end on the shipped example data
#   make test   run the test suite
#   make fuzz   run each fuzz target for FUZZ_SECONDS (docs/fuzzing.md)

SWIFT     ?= swift
CONFIG    ?= release
PREFIX    ?= /usr/local
DEMO_HOME ?= $(CURDIR)/.demo-home
TOOLS     := ner-queue ner-dispatch ner-train ner-pack ner-register ner-infer ner-serve ner-console
APT_PKGS  := libopenblas-dev libsqlite3-dev libarchive-dev zstd
TEST_PKGS := strace chromium chromium-driver
# bench/serve.sh drives wrk; bench/learning-curve.sh plots with matplotlib in a virtual environment.
BENCH_PKGS := wrk python3-venv
SWIFTFLAGS := -c $(CONFIG)

.PHONY: all deps build test test-asan test-tsan demo bench cuda-kernels install install-files clean fuzz fuzz-build fuzz-merge

all: build

# Installs the C libraries with apt-get when missing (needs root or sudo).
deps:
	@missing=""; for p in $(APT_PKGS) $(if $(filter test bench,$(MAKECMDGOALS)),$(TEST_PKGS)) $(if $(filter bench,$(MAKECMDGOALS)),$(BENCH_PKGS)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Builds the eight tools and links them into bin/, so PATH=$PWD/bin:$PATH works.
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
	NER_SANITIZER=address ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no $(call SANITIZE_TEST,address,asan)
test-tsan: deps
	NER_SANITIZER=thread TSAN_OPTIONS=halt_on_error=0 SWIFT_BACKTRACE=enable=no $(call SANITIZE_TEST,thread,tsan)

# Queue -> dispatch (train | pack | register) -> infer, on examples/data, in a fresh home.
demo: build
	rm -rf "$(DEMO_HOME)"
	$(MAKE) -C examples NER_HOME="$(DEMO_HOME)" BIN="$(CURDIR)/bin" demo

# Fuzzing (docs/fuzzing.md): the debug configuration, so every runtime check stays on (the release
# one builds the engine -Ounchecked), optimised (-O) for speed, with libFuzzer and AddressSanitizer,
# in its own build folder. swiftc keeps only the last -sanitize flag, and SwiftPM passes one per
# sanitizer, so the combined flag comes last: without it the Swift code had no coverage feedback.
# Each target runs in turn over its committed corpus; new inputs and crash
# files go under FUZZ_OUT, and only `make fuzz-merge` adds inputs to the committed corpus. Swift's
# own crash backtracer is off: libFuzzer and ASan report the crash, and the two together stalled.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= conll ndjson tokenizer model tarball http
FUZZ_BUILD   ?= .build-fuzz
FUZZ_OUT     ?= $(FUZZ_BUILD)/findings
FUZZER        = $(FUZZ_BUILD)/debug/ner-fuzz
FUZZ_LIMITS  ?= -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30

fuzz-build: deps
	$(SWIFT) build -c debug --build-path $(FUZZ_BUILD) --product ner-fuzz \
	  --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address -Xswiftc -DNER_FUZZER -Xswiftc -O

fuzz: fuzz-build
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$(FUZZ_OUT)/$$t/corpus" "$(FUZZ_OUT)/$$t/crashes"; \
	  dict=""; [ -f fuzz/dict/$$t.dict ] && dict="-dict=fuzz/dict/$$t.dict"; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  NER_FUZZ_TARGET=$$t SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=fuzz/lsan.supp $(FUZZER) "$(FUZZ_OUT)/$$t/corpus" fuzz/corpus/$$t $$dict $(FUZZ_LIMITS) \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix="$(FUZZ_OUT)/$$t/crashes/" \
	    || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed (see $(FUZZ_OUT)/*/crashes)"; exit 1; fi

# Adds the inputs that reach new code to the committed corpus (minimised by libFuzzer's merge).
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  NER_FUZZ_TARGET=$$t $(FUZZER) -merge=1 fuzz/corpus/$$t "$(FUZZ_OUT)/$$t/corpus" $(FUZZ_LIMITS) || exit 1; \
	done

bench: build
	@for b in bench/*.sh; do echo "== $$b"; BIN="$(CURDIR)/bin" bash "$$b" || exit 1; done

# NVIDIA's compilers (from PyPI) on the CUDA kernels; no GPU needed.
cuda-kernels:
	bash bench/cuda-kernels.sh

# The tools, a man page for each (gen-manpage, from the tool's own argument parser, so it says what
# --help says) and their bash, zsh and fish completions (from the tool's --generate-completion-script).
install: build
	$(MAKE) --no-print-directory install-files

# What `install` copies, taken from PRODUCTS (the folder `swift build` wrote the tools to) without
# building; the tests run it on the tools they test. DESTDIR stages a package.
PRODUCTS ?= $(shell $(SWIFT) build $(SWIFTFLAGS) --show-bin-path)
DEST      = $(DESTDIR)$(PREFIX)
install-files:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	install -d "$(DEST)/bin" "$(DEST)/share/man/man1" "$(DEST)/share/bash-completion/completions" \
	  "$(DEST)/share/zsh/site-functions" "$(DEST)/share/fish/vendor_completions.d"; \
	for t in $(TOOLS); do \
	  exe=$$(readlink -f "$(PRODUCTS)/$$t"); \
	  "$(PRODUCTS)/gen-manpage" "$$exe" > "$$tmp/$$t.1"; \
	  for sh in bash zsh fish; do "$$exe" --generate-completion-script $$sh > "$$tmp/$$t.$$sh"; done; \
	  install -m 0755 "$$exe" "$(DEST)/bin/$$t"; \
	  install -m 0644 "$$tmp/$$t.1" "$(DEST)/share/man/man1/$$t.1"; \
	  install -m 0644 "$$tmp/$$t.bash" "$(DEST)/share/bash-completion/completions/$$t"; \
	  install -m 0644 "$$tmp/$$t.zsh" "$(DEST)/share/zsh/site-functions/_$$t"; \
	  install -m 0644 "$$tmp/$$t.fish" "$(DEST)/share/fish/vendor_completions.d/$$t.fish"; \
	done; \
	echo "installed $(TOOLS) with man pages and completions under $(DEST)"

clean:
	rm -rf .build .build-asan .build-tsan $(FUZZ_BUILD) bin/ner-* "$(DEMO_HOME)"
