# The two commands: `make run` and `make test`. Both install missing Debian packages first.
BUILD ?= build
LISTEN ?=
ARGS ?=

.PHONY: all deps build run test demo bench bench-live bench-record soak format format-check clean

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

# haven on http://127.0.0.1:8000 (or LISTEN) with the test fakes behind it; Ctrl-C stops it.
demo: build
	@sh tools/demo.sh $(BUILD) $(if $(LISTEN),$(LISTEN),127.0.0.1:8000) $(ARGS)

bench: build
	@sh bench/catalog-load.sh $(BUILD)

bench-live: build
	@sh bench/live.sh $(BUILD)

# 30 minutes: one recorded session, viewers joining and leaving; RSS/fd curve to docs/soak.svg.
soak: build
	@sh bench/soak.sh $(BUILD)

bench-record: build
	@sh bench/record.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
