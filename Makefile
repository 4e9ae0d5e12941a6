# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The demo needs only the scorer and the report (no torch); the tests need every extra.
DEMO_STAMP := $(VENV)/.demo-$(HASH)
STAMP := $(VENV)/.dev-$(HASH)

.PHONY: demo test lint speech bench clean

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[report]'
	rm -f $(VENV)/.demo-*
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.dev-* $(VENV)/.demo-*
	touch $@ $(DEMO_STAMP)

# The main job on the embedded default: score the hand-written example set (examples/) with the built-in
# protocol (or the official wheel files, when `affectgpt bench fetch-wheels` has cached them), then write
# the JSON results and an HTML report into demo-out/.
demo: $(DEMO_STAMP)
	$(BIN)/affectgpt bench suite --predictions-root examples/predictions --labels-root examples/labels
	@echo
	$(BIN)/affectgpt bench score --dataset ovmerdplus --predictions examples/predictions/ovmerdplus \
		--labels examples/labels/ovmerdplus --epoch 20
	@echo
	$(BIN)/affectgpt bench suite --predictions-root examples/predictions --labels-root examples/labels \
		--format json --output demo-out/suite.json
	$(BIN)/affectgpt bench report demo-out/suite.json --output demo-out/report.html
	@echo "open demo-out/report.html to see the report"

# The ASR test speaks its sentence with espeak-ng (a Debian package); without it that one test skips.
speech:
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null 2>&1; } || \
		echo "note: espeak-ng not installed; the speech-recognition test will skip"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

test: lint speech
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_extraction.py
	$(BIN)/python benchmarks/compare_protocols.py
	$(BIN)/python benchmarks/bench_media.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_fsdp.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
