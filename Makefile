# Every target does all set-up on a fresh machine with only Python 3.11+ on it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
DIST_STAMP := $(VENV)/.installed-dist

.PHONY: run test check docs dist install install-test install-desktop uninstall-desktop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

# the docs extra too: the strict build of the user guide is a test (tests/test_docs.py)
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[test,docs]"
	touch $@ $(STAMP) $(DOCS_STAMP)

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[docs]"
	touch $@ $(STAMP)

$(DIST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dist]"
	touch $@ $(STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/cnnstudio

# pytest-xdist: one worker per CPU (at most 8: each holds torch and Qt, about 1 GB); a module's
# tests stay on one worker, so its module-scoped fixtures (small trainings) run once.
# Two cores, measured: make test 156 s serially, 96 s in parallel; make check 92 s, 57 s.
PARALLEL := -n auto --maxprocesses=8 --dist loadscope

test: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PARALLEL)

# the quick loop while working: every test but those marked slow (make test runs them too)
check: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PARALLEL) -m "not slow"

# The launcher, icon and .cnnproj file type for this user (xdg-utils): a double-click on a
# project opens it. Run after `make install` or `pipx install .`.
install-desktop:
	sh packaging/install-desktop.sh

uninstall-desktop:
	sh packaging/install-desktop.sh --uninstall

# the user guide into site/; its reference pages and figures are generated from the code
# (docs/hooks.py). NO_MKDOCS_2_WARNING: Material's notice about MkDocs 2 on every build
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# The one-folder application in dist/cnnstudio/ (PyInstaller), then its smoke test: the built
# binary in a clean environment (empty HOME, no virtual environment), screenshots in build/smoke.
# Minutes, so not part of make test.
dist: $(DIST_STAMP)
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller \
		packaging/cnnstudio.spec
	$(BIN)/python packaging/smoke_test.py --app dist/cnnstudio --out build/smoke

clean:
	rm -rf $(VENV) build dist *.egg-info site
