# Two entry points for a fresh Debian 12 machine: `make demo` and `make test`.
BUILD   ?= build
JOBS    ?= 2
SHARED_DATA := $(abspath ../shared/datasets)
# Data directory: $SIAMREC_DATA_DIR if set, else ../shared/datasets when it exists, else siamrec's default.
ifeq ($(SIAMREC_DATA_DIR),)
  ifneq ($(wildcard $(SHARED_DATA)/README.md),)
    export SIAMREC_DATA_DIR := $(SHARED_DATA)
  endif
endif

.PHONY: all deps configure build test demo bench clean
all: build

deps:
	bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/siamrec

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
