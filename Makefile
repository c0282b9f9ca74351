# quantum-mind — the two commands a newcomer needs:
#   make run    set up .venv and run the main job on embedded defaults
#   make test   set up, start the services the tests need, run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch on CPU hosts (pip takes it from the local wheel cache where one exists).
# On a GPU host: make install TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= train,hardware,molecules,dev
# The dependency versions the suite last passed with; CONSTRAINTS= floats to the newest releases.
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast test-deploy images services system-deps clean lint help

help:
	@echo "make run     - install and run a discovery on embedded defaults (SQLite, eager queue, procedural generator)"
	@echo "make test    - install, start Redis/PostgreSQL if needed, run the whole suite (unit + integration)"
	@echo "make install - create $(VENV) and install quantum-mind with extras [$(EXTRAS)]"
	@echo "make images  - build the base, redis, postgres and cpu-worker images without a registry (docker, debootstrap)"
	@echo "               GPU=1 also builds the gpu-worker image (vLLM + CUDA torch from PyPI; runs only on NVIDIA GPUs)"
	@echo "make test-deploy - bring the compose stack up from those images, run a discovery through it, break it"

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q $(PIP_CONSTRAINTS) -e ".[$(EXTRAS)]"
	@touch $@

system-deps:
	@scripts/system_deps.sh

services:
	@scripts/ensure_services.sh

run: install
	$(BIN)/qmind db upgrade
	$(BIN)/qmind discover --goal tfim-6 --iterations 6 --prompts-per-iteration 4

test: install system-deps services
	$(BIN)/python -m pytest -q --durations=15

images:
	@scripts/ensure_docker.sh
	@scripts/build_images.sh $(if $(filter 1,$(GPU)),--gpu)

test-deploy: install system-deps images
	@PYTHON=$(BIN)/python scripts/install_compose_v2.sh
	$(BIN)/python -m pytest -q -s -m deploy tests/test_deploy_stack.py

test-fast: install
	$(BIN)/python -m pytest -q -m "not integration and not slow"

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache reports qmind.db*
