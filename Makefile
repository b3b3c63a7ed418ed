# The two commands: `make run` and `make test`. Both install missing Debian packages first.
BUILD ?= build
LISTEN ?=
ARGS ?=

.PHONY: all deps build run test test-asan test-valgrind demo bench bench-live bench-record soak fuzz format format-check clean

all: build

deps:
	@sh tools/install-deps.sh

build: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD) --buildtype=debugoptimized; fi
	@ninja -C $(BUILD)

run: build
	./$(BUILD)/src/haven $(if $(LISTEN),--listen $(LISTEN)) $(ARGS)

test: build
	@sh tools/run-tests.sh $(BUILD)

# One stage of `make test` alone (tests/sanitizers/README.md).
test-asan: build
	@HAVEN_TEST_STAGES=asan sh tools/run-tests.sh $(BUILD)

test-valgrind: build
	@HAVEN_TEST_STAGES=valgrind sh tools/run-tests.sh $(BUILD)

# haven on http://127.0.0.1:8000 (or LISTEN) with the test fakes behind it; Ctrl-C stops it.
demo: build
	@sh tools/demo.sh $(BUILD) $(if $(LISTEN),$(LISTEN),127.0.0.1:8000) $(ARGS)

bench: build
	@sh bench/catalog-load.sh $(BUILD)

bench-live: build
	@sh bench/live.sh $(BUILD)

soak: build
	@sh bench/soak.sh $(BUILD)

bench-record: build
	@sh bench/record.sh $(BUILD)

# libFuzzer on every parser of outside input (tests/fuzz/README.md): FUZZ_SECONDS (600) per
# target, one at a time; FUZZ_TARGETS picks some. Needs clang (installed if missing).
fuzz:
	@sh tools/fuzz.sh $(FUZZ_TARGETS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
