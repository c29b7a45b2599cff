# Two commands on a fresh machine: `make quickstart` (train, evaluate and predict on the shipped example data with
# the embedded default encoder) and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nerforge-installed
QUICK ?= runs/quickstart

.PHONY: install quickstart test test-slow lint bench clean image image-test ray-replica-test e2e-label-studio e2e-doccano

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[onnx,serve,dev,ray,spacy,tune]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/nerforge train examples/jobs/quickstart.toml --output $(QUICK)/model
	HF_HUB_OFFLINE=1 $(VENV)/bin/nerforge evaluate $(QUICK)/model examples/jobs/test.conll --output $(QUICK)/eval
	HF_HUB_OFFLINE=1 $(VENV)/bin/nerforge predict $(QUICK)/model examples/jobs/sample.txt --output $(QUICK)/sample.jsonl --show

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --slow

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# The deployment image (podman, root; minutes): deploy/test-image.sh builds it (and, for image-test, runs and checks it).
image: $(STAMP)
	bash deploy/test-image.sh --build-only

image-test: $(STAMP)
	bash deploy/test-image.sh

# The image as a node of a Ray cluster whose Ray Serve replica serves the model (podman, root; minutes).
ray-replica-test: $(STAMP)
	NERFORGE_IMAGE_MODEL=$${NERFORGE_IMAGE_MODEL:-runs/quickstart/model} bash deploy/test-ray-replica.sh

clean:
	rm -rf runs mlruns mlflow.db .pytest_cache

# The annotation loop with a real Label Studio in its own virtual environment (minutes; needs ../shared): see
# e2e/label_studio.py. Not part of `make test`.
e2e-label-studio: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) e2e/label_studio.py

# Our doccano import in a real doccano and on its page in Chromium (a minute): see e2e/doccano.py.
e2e-doccano: $(STAMP)
	$(PY) e2e/doccano.py
