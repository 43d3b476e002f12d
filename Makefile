# epcli set-up: `make demo` runs the main job on example_data/, `make test` runs the tests.
# Both create .venv when missing, install the package (torch pinned to a CPU build that
# installs quickly; override with `make TORCH_SPEC=torch ...`), and make sure bedtools exists.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= demo_out
BENCH_OUT ?= bench_out/synth
BENCH_BUDGET ?= 240

.PHONY: setup demo test lint bench bench-quick clean bedtools

$(VENV)/.installed: pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

bedtools:
	@command -v bedtools >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bedtools with apt-get" >&2; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bedtools >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bedtools >/dev/null; \
	  elif command -v conda >/dev/null 2>&1; then \
	    conda install -y -q -c bioconda bedtools; \
	  else \
	    echo "error: bedtools is not installed and cannot be installed automatically." >&2; \
	    echo "Install it with 'apt-get install bedtools', 'brew install bedtools' or 'conda install -c bioconda bedtools', then run make again." >&2; \
	    exit 1; \
	  fi; }
	@command -v bedtools >/dev/null 2>&1 || { echo "error: bedtools still not found on PATH" >&2; exit 1; }

setup: $(VENV)/.installed bedtools

demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash example_data/demo.sh $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q

# the semi-synthetic ground-truth benchmark (docs/benchmarks.md): every model, 240 s of
# training each; about an hour on 2 CPU cores
bench: setup
	$(PY) benchmarks/run.py -o $(BENCH_OUT) --budget-s $(BENCH_BUDGET) --plot docs/img/label_efficiency.png --force

bench-quick: setup
	$(PY) benchmarks/run.py --quick -o $(BENCH_OUT)_quick --force

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks conftest.py
	$(VENV)/bin/ruff format --check src tests benchmarks conftest.py

clean:
	rm -rf $(DEMO_OUT) bench_out build dist src/*.egg-info .pytest_cache
