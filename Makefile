# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
# Both create .venv and install what they need, and no more:
#   make run   serving and the embedded job worker: the API + ONNX Runtime first (the first
#              image is served before torch is in); torch (the local CPU build) and the
#              training side install in the background, and the job worker starts once
#              they are there
#   make test  everything, the test and development tools too (pytest, Playwright,
#              schemathesis, ruff, the deployment validators) and the Debian packages the
#              tests use (scripts/system-deps.sh)
# `make run` serves a working store outside the tracked tree: $(STORE)/models, seeded from the
# shipped models/ (versions it never had; never overwriting), with jobs, datasets and records
# in $(STORE)/data. `make reset-store` starts it over. git status stays clean.

PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 8000
VENV   ?= .venv
STORE  ?= var
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check
GANSERVE := $(VENV)/bin/ganserve
SERVE_STAMP := $(VENV)/.installed-serve
TRAIN_STAMP := $(VENV)/.installed-train
DEV_STAMP   := $(VENV)/.installed-dev
# the working store (also the settings' default; STORE=... moves it for these targets)
run store demo: export GANSERVE_MODELS_DIR ?= $(STORE)/models
run store demo: export GANSERVE_DATA_DIR ?= $(STORE)/data

.PHONY: run test lint demo install install-serve install-train store reset-store \
        clean-venv bench system-deps compose-check

# serving: the base package and the CPU ONNX Runtime, no torch
$(SERVE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[cpu]'
	touch $@

# training (fine-tune jobs, ganserve train/export): torch from the local CPU build, and the
# train extra's packages, without reinstalling ganserve under a running server. pip runs
# under a lock: `make run` starts this in the background, and a `make run` or `make test`
# meanwhile waits for it instead of installing into the same venv at once; a Ctrl-C of
# `make run` leaves it to finish
$(TRAIN_STAMP): $(SERVE_STAMP)
	$(PY) scripts/deps.py train | grep -Ev '^torch([<>=!~; ]|$$)' > $(VENV)/train-requirements.txt
	flock $(VENV)/.install-train.lock $(PIP) install torch==2.13.0 -r $(VENV)/train-requirements.txt
	touch $@

# tests and development tools
$(DEV_STAMP): $(TRAIN_STAMP)
	$(PIP) install -e '.[cpu,train,dev]'
	touch $@

install-serve: $(SERVE_STAMP)
install-train: $(TRAIN_STAMP)
install: $(DEV_STAMP)

## run: serve the working store on http://$(HOST):$(PORT) (docs at /docs); make run PORT=9000
run: $(SERVE_STAMP) store
	@$(MAKE) -s -q $(TRAIN_STAMP) || { echo "make run: installing torch and the training" \
	  "side in the background (log: $(VENV)/install-train.log); the job worker starts when" \
	  "it is in"; nohup $(MAKE) -s $(TRAIN_STAMP) >> $(VENV)/install-train.log 2>&1 & }
	$(GANSERVE) serve --workers 2 --host $(HOST) --port $(PORT)

## store: the working store, seeded from the shipped models/ (only what it was never offered)
store: $(SERVE_STAMP)
	@$(GANSERVE) seed-store --from models

## reset-store: delete the working store ($(STORE)/: versions made by jobs, defaults,
## deletions, job records, datasets); the next `make run` seeds it afresh
reset-store:
	rm -rf $(STORE)

system-deps:
	@scripts/system-deps.sh

## test: lint + the whole test suite (what CI runs)
test: system-deps $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

## demo: train a DCGAN on Fashion-MNIST for 300 steps (~1 min), export it, evaluate it
demo: $(TRAIN_STAMP) store
	rm -rf runs/demo runs/demo-models
	$(GANSERVE) train dcgan --preset fashion32 --steps 300 --out runs/demo
	$(GANSERVE) export runs/demo --name demo --to runs/demo-models
	$(GANSERVE) evaluate runs/demo-models/demo/1 --n 2000 \
		--extractor $(STORE)/models/_evaluators/fashion-mnist

bench: $(TRAIN_STAMP)
	$(PY) benchmarks/train_speed.py

clean-venv:
	rm -rf $(VENV)

## compose-check: build the images and start docker-compose.yml for real (Podman here),
## check it end to end on empty volumes, print a table (scripts/compose_check.py)
compose-check:
	$(PYTHON) scripts/compose_check.py
