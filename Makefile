# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
# Both create .venv and install what they need; torch comes from the CPU build (torch==2.13.0).

PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 8000
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint demo install clean-venv bench

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[cpu,train,dev]'
	touch $@

install: $(STAMP)

## test: lint + the whole test suite (what CI runs)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## run: serve the shipped models on http://$(HOST):$(PORT) (docs at /docs); make run PORT=9000
run: $(STAMP)
	$(VENV)/bin/ganserve serve --models-dir models --workers 2 --host $(HOST) --port $(PORT)

## demo: train a DCGAN on Fashion-MNIST for 300 steps (~1 min), export it, evaluate it
demo: $(STAMP)
	rm -rf runs/demo runs/demo-models
	$(VENV)/bin/ganserve train dcgan --preset fashion32 --steps 300 --out runs/demo
	$(VENV)/bin/ganserve export runs/demo --name demo --to runs/demo-models
	$(VENV)/bin/ganserve evaluate runs/demo-models/demo/1 --n 2000 \
		--extractor models/_evaluators/fashion-mnist

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py

clean-venv:
	rm -rf $(VENV)
