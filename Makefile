# Two commands: `make demo` (train + evaluate the default model) and `make test` (the test suite).
# Both create .venv and install the core and every plugin under plugins/ into it (editable).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/))
EPOCHS ?= 20
RUN_DIR ?= runs/demo-mobilenet_v2-$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test clean

$(BIN)/.installed: pyproject.toml $(addsuffix pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=64" wheel
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
	$(BIN)/catdog-zoo models
	$(BIN)/catdog-zoo data stats
	$(BIN)/catdog-zoo train mobilenet_v2 --epochs $(EPOCHS) --run-dir $(RUN_DIR)
	$(BIN)/catdog-zoo evaluate $(RUN_DIR) --split test

test: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || echo "Note: no Chromium \
	here, so the browser test of 'serve' is skipped: apt-get install chromium chromium-driver (Debian/Ubuntu)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .keras-home *.egg-info plugins/*/*.egg-info
