# Two entry points for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint unit e2e proto

$(BIN)/pyistiod: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/pyistiod

demo: setup
	$(BIN)/pyistiod demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

unit: setup
	$(BIN)/pytest -m "not e2e"

e2e: setup
	$(BIN)/pytest -m e2e

test: lint
	$(BIN)/pytest

# Regenerate the Python code of proto/ (tests/unit/test_proto_generated.py checks it is current).
proto: setup
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/ca/gen/istio_ca.proto
