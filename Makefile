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

.PHONY: all deps configure build test demo bench clean install-python format format-check tidy asan-test tsan-test
all: build

deps:
	bash scripts/install-deps.sh

# CI=true: compiler warnings are errors.
CMAKE_ARGS ?=
ifeq ($(CI),true)
  CMAKE_ARGS += -DSIAMREC_WERROR=ON
endif

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The Python module into the active Python (a venv's site-packages, else the user site).
install-python: build
	bash scripts/install-python.sh $(BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)/siamrec

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# Style: .clang-format over every C++ file of the project (format rewrites, format-check fails on a diff).
CXX_FILES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null || find src include tests bench examples -name '*.cc' -o -name '*.h')
format:
	clang-format -i $(CXX_FILES)
format-check:
	clang-format --dry-run -Werror $(CXX_FILES)
	@echo "format-check: $(words $(CXX_FILES)) files follow .clang-format"

# clang-tidy (.clang-tidy) over FILES (default: the public API and the evaluator).
FILES ?= src/api/dataset.cc src/api/model.cc src/eval/evaluator.cc
tidy: configure
	clang-tidy -p $(BUILD) --quiet $(FILES)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (a build of its own).
ASAN_BUILD ?= build-asan
asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIAMREC_SANITIZE=address,undefined -DSIAMREC_WERROR=ON -DSIAMREC_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer over the parallel code that must have no race: the evaluator and scorer, the
# server, the public API, and the fused engine's deterministic mode (Hogwild's intended races are
# the documented suppressions in tests/tsan.supp).
TSAN_BUILD ?= build-tsan
TSAN_TESTS ?= Evaluator|Scorer|TopK|Acceptance|Handlers|Server|Serve\.|ServeFaults|Api|Deterministic|MiniBatchEpoch
tsan-test: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIAMREC_SANITIZE=thread -DSIAMREC_BUILD_BENCH=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) halt_on_error=1 second_deadlock_stack=1" \
	  ctest --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'
