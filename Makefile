# make quickstart : set up .venv and run the main job end to end on the data root
# make test       : set up .venv and run the test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
QUICK   := runs/quickstart

.PHONY: setup quickstart test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test,onnx,teacher,embeddings]'
	touch $(STAMP)

quickstart: setup
	$(BIN)/python -m budgetlm.quickstart --out $(QUICK)

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) runs
