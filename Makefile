# Every target sets up its own virtualenv, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
LINTED := $(wildcard feishu_vc_async tests benchmarks examples)

.PHONY: test quicktest lint typecheck pytest demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy --strict feishu_vc_async
	$(BIN)/python -m pytest -W error

# The suite without the tests marked slow (benchmark smoke runs, kill -9 resumes, long
# runs), for a quick look while working; CI runs `make test`, everything.
quicktest: $(STAMP)
	$(BIN)/python -m pytest -W error -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy --strict feishu_vc_async

pytest: $(STAMP)
	$(BIN)/python -m pytest -W error $(ARGS)

demo: $(STAMP)
	$(BIN)/python -m feishu_vc_async demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
