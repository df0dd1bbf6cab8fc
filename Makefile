# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch goes in first: a bare `torch` requirement would pull a multi-GB CUDA build. GPU users:
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" demo
TORCH_SPEC ?= torch==2.13.0
TINY_T5 := .cache/tiny-t5
DEMO_START := $(shell date +%s)  # make demo's closing line says how long it took here
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv demo demo-scripts test test-fast lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

$(TINY_T5)/config.json: | $(VENV)/.installed
	$(PY) scripts/make_tiny_model.py --kind t5 --tie-embeddings --out $(TINY_T5) --corpus datamodules/data/demo/train.jsonl

demo: $(VENV)/.installed $(TINY_T5)/config.json
	$(PY) scripts/train.py fit --config configs/demo.yaml --trainer.enable_progress_bar=false
	$(PY) scripts/train.py test --config configs/demo.yaml --trainer.enable_progress_bar=false
	$(PY) scripts/train.py predict --config configs/demo.yaml --trainer.enable_progress_bar=false
	@echo "Demo done in $$(( $$(date +%s) - $(DEMO_START) )) s (on this machine, as loaded as it was): a tiny random-weight T5 learned to join"
	@echo "two facts of a synthetic news article into one sentence; \"Against the lead baselines\" above says by how much it"
	@echo "beats copying the opening. Real MLSUM summaries are harder; the real recipe is configs/mlsum_flan_t5_small.yaml."
	@echo "Next: source .venv/bin/activate, then the README's \"After the demo\"."

# The companion scripts, offline, on tiny random-weight models built here (their words are nonsense; the layout, the
# options and the devices are what real models get): the course's GPT-2, generation, translation and comparison.
TINY_GPT2 := .cache/tiny-gpt2
TINY_GEMMA2 := .cache/tiny-gemma2
$(TINY_GPT2)/config.json: | $(VENV)/.installed
	$(PY) scripts/make_tiny_model.py --kind gpt2 --out $(TINY_GPT2)
$(TINY_GEMMA2)/config.json: | $(VENV)/.installed
	$(PY) scripts/make_tiny_model.py --kind gemma2 --out $(TINY_GEMMA2)

demo-scripts: $(VENV)/.installed $(TINY_T5)/config.json $(TINY_GPT2)/config.json $(TINY_GEMMA2)/config.json
	$(PY) scripts/next_token.py --model $(TINY_GPT2) --top-k 5 "El niño juega en el"
	$(PY) scripts/generate.py --model $(TINY_GPT2) --max-new-tokens 12 --do-sample --top-p 0.9 --seed 1 "Había una vez"
	$(PY) scripts/generate.py --model $(TINY_GPT2) --max-new-tokens 12 --pipeline "Había una vez"
	$(PY) scripts/translate.py --model $(TINY_GEMMA2) --source es --target en --max-new-tokens 12 "El niño juega en el parque."
	$(PY) scripts/compare.py --models $(TINY_T5) $(TINY_GPT2) --max-new-tokens 8 "Lo mejor de vivir cerca del mar es"
	@echo "Companion scripts done, offline, on tiny random-weight models: their words are nonsense, the rest is what"
	@echo "gpt2, GemmaX2 and Flan-T5 give with --model (docs/scripts.md maps each course notebook to its command)."

# Two pytest-xdist workers, one test file each at a time (module fixtures such as make demo run once); tests/conftest.py
# gives each worker its share of the cores; the 15 slowest tests are listed. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=15

# The fast tier, for every change: the same suite without the tests that start processes or train for many steps
# (marked slow in tests/conftest.py). make test, what CI runs, still runs everything.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope -m "not slow"

lint: $(VENV)/.installed   # ruff (lint and format) and mypy (resumen/core/), configured in pyproject.toml; .pre-commit-config.yaml runs the same
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed   # the full benchmark (tens of minutes on a CPU); see docs/performance.md
	$(PY) benchmarks/benchmark.py --output bench.json

clean:
	rm -rf runs .cache
