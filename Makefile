# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA := data/synthetic
DEMO_PEOPLE ?= 300000

.PHONY: demo test bench lint clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEMO_DATA)/truth.json: | $(STAMP)
	$(BIN)/jdl synth --people $(DEMO_PEOPLE) --out $(DEMO_DATA) --seed 2013

demo: $(STAMP) $(DEMO_DATA)/truth.json
	$(BIN)/jdl run configs/examples/demo.yaml --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-enable -q

clean-data:
	rm -rf $(DEMO_DATA)
