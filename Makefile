# The two commands of the README: `make demo` (set up, run the default sweep) and `make test`
# (set up, run the tests). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# CPU-only machines get PyTorch's CPU build first (a few hundred MB instead of several GB of
# CUDA packages); machines with nvidia-smi get the default CUDA build from the project's
# dependencies. Off this project's machines, point TORCH_CPU_INDEX at PyTorch's CPU index:
#   make install TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
TORCH_CPU_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?=

.PHONY: install demo test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet "torch==$(TORCH_CPU_VERSION)" \
	    $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX)); \
	fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/tuner sweep search_spaces/bbc_news_minilm.yaml

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow -s

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) results .pytest_cache
