# Two commands: `make demo` (train + evaluate the default model) and `make test` (the test suite).
# Both create .venv and install the core and every plugin under plugins/ into it (editable).
# `make dist` builds a wheel of the core and of every plugin into dist/, to install elsewhere.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/))
EPOCHS ?= 20
RUN_DIR ?= runs/demo-mobilenet_v2-$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=
# The suite runs in one process per core (pytest-xdist), at most 4: each holds TensorFlow (~1-2 GB). Workers
# steal tests from each other, so a worker left with the slow conformance or real-data tests is not the last one.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test dist clean

# The venv with what builds the packages (setuptools), then everything installed into it.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=64" wheel

$(BIN)/.installed: $(BIN)/python pyproject.toml $(addsuffix pyproject.toml,$(PLUGINS))
	$(BIN)/pip install -q --no-build-isolation -e ".[test,openvino,serve]" $(addprefix -e ,$(PLUGINS))
	touch $@

install: $(BIN)/.installed

# Offline machines (like this project's CI): when KERAS_HOME is unset and ../shared is beside the
# clone, use a Keras cache seeded from it; online users download into ~/.keras as Keras always does.
SHARED_SEEDER := ../shared/tools/offline-keras-home
ifeq ($(origin KERAS_HOME), undefined)
ifneq ($(wildcard $(SHARED_SEEDER)),)
demo: export KERAS_HOME := $(CURDIR)/.keras-home
demo: SEED := $(PYTHON) $(SHARED_SEEDER) $(CURDIR)/.keras-home >/dev/null && echo "Offline: Keras cache seeded from ../shared in .keras-home"
endif
endif

demo: install
	@$(or $(SEED),true)
	$(BIN)/catdog-zoo models --no-params
	$(BIN)/catdog-zoo data stats
	$(BIN)/catdog-zoo train mobilenet_v2 --epochs $(EPOCHS) --run-dir $(RUN_DIR)
	$(BIN)/catdog-zoo evaluate $(RUN_DIR) --split test
	@echo "The run's report (learning curves, confusion matrix, worst errors, calibration): $(RUN_DIR)/report.html"

test: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || echo "Note: no Chromium \
	here, so the browser test of 'serve' is skipped: apt-get install chromium chromium-driver (Debian/Ubuntu)"
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Wheels of the core and of every plugin, to install where this clone is not (pip install dist/*.whl, or
# catdog-zoo install dist/*.whl), built with the venv's setuptools: nothing downloaded, nothing else installed.
dist: $(BIN)/python
	rm -rf dist build $(addsuffix build,$(PLUGINS))
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist . $(PLUGINS)
	@ls dist

# Your runs, and what catdog-zoo and Keras keep outside this folder, stay: said, with where they are.
CACHE_DIR = $${CATDOG_ZOO_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/catdog-zoo}
clean:
	rm -rf $(VENV) .keras-home dist build *.egg-info plugins/*/*.egg-info plugins/*/build
	@echo "Kept: runs/ (your runs), the cache $(CACHE_DIR) (decoded images and features, safe to delete) and \
	Keras' downloads in $${KERAS_HOME:-$$HOME/.keras}; remove them by hand if you want them gone"
