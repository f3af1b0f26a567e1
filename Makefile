# Two commands on a fresh machine: `make book` and `make test`.
# Both create .venv from requirements.txt (+ requirements-dev.txt) when it is missing
# or older than those files, then run in the quick profile (CPU, offline, phantom data).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Progress bars off and the quick profile during the book build and the tests.
export COVIDLIB_PROFILE ?= quick
export COVIDLIB_PROGRESS ?= 0
export TQDM_DISABLE ?= 1
export PYDEVD_DISABLE_FILE_VALIDATION ?= 1

.PHONY: book test venv lint clean clean-book colab-url

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build -W -n --keep-going .
	# offline reading (bundled MathJax, checked in headless Chromium where installed) and
	# clean outputs (no warnings, absolute paths or host details)
	$(BIN)/python tools/check_built_book.py _build/html
	@echo "Book written to _build/html/index.html"

# The suite (in TEST_WORKERS processes of one torch thread each: on 2 cores two
# single-threaded workers beat one two-threaded process, since most tests are small and
# overhead-bound), then the chapters one after another (they share the trained runs under
# data/runs), then every docstring example of the library (without tests/conftest.py, as a
# user would run them).
TEST_WORKERS ?= 2
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -n $(TEST_WORKERS) --durations=15 -p no:cacheprovider
	$(BIN)/python -m pytest chapters --nbmake --nbmake-timeout=900 --durations=20 -p no:cacheprovider
	$(BIN)/python -m pytest covidlib --doctest-modules -p no:cacheprovider

# After changing repository.url in _config.yml (a fork): copy it into the Colab install cells.
colab-url:
	$(PYTHON) tools/sync_repository_url.py

lint: $(STAMP)
	$(BIN)/ruff check covidlib tests benchmarks
	$(BIN)/mypy covidlib

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
