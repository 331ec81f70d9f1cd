# The two commands a reader needs: `make book` and `make test` (see README.md).
# Both bootstrap .venv from pyproject.toml + constraints.txt on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every build and test here runs the quick profile: CPU-sized, offline, about a minute a chapter.
export RESLIB_PROFILE ?= quick
export PYTHONHASHSEED := 0

.PHONY: help book test unit notebooks book-strict book-check lab clean seeds

help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   unit tests, every notebook under nbval, a strict book build and its browser check"
	@echo "make lab    JupyterLab on the chapters"
	@echo "make seeds  every chapter for seeds 0-4 (quick profile): a table of findings per seed"
	@echo "make clean  remove build outputs (keeps .venv and data/)"

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
		|| { echo "reslib needs Python >= 3.10 (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html
	@echo "The book is built: open $(CURDIR)/_build/html/index.html"

test: unit notebooks book-strict book-check

# `book`-marked tests need the built book; book-check runs them after book-strict.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not book" -p no:cacheprovider tests

# nbval executes every chapter; the plugin hands the executed notebooks to the book build's cache,
# so book-strict renders the outputs nbval checked instead of executing every chapter again.
notebooks: $(STAMP)
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
		-p no:cacheprovider -p tests.nbval_book_cache chapters

# Warnings are errors (-W); --keep-going reports all of them before failing.
book-strict: $(STAMP)
	$(BIN)/jupyter-book build . --builder html -W --keep-going

# The built book in headless Chromium (skipped with a note when Chromium is missing) and a
# chapter run from reslib's wheel in a fresh, offline environment, as on Colab.
book-check: book-strict
	RESLIB_BOOK_CHECK=1 $(BIN)/python -m pytest -q -m book -p no:cacheprovider tests

# Not part of `make test`: five runs of every chapter (several minutes a chapter). Every finding
# must hold for seeds 0-4; this prints which held, per seed, with the measured numbers.
# SEED_JOBS=2 runs two chapters at once.
SEED_JOBS ?= 1
seeds: $(STAMP)
	$(BIN)/python benchmarks/seed_table.py --seeds 0 1 2 3 4 --jobs $(SEED_JOBS)

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

clean:
	rm -rf _build .pytest_cache
