# Two commands do all set-up: `make quickstart` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1
# exact versions of every package installed below, pytest and pytest-timeout included
CONSTRAINTS := constraints.txt

.PHONY: install quickstart test clean-quickstart mutants

# Reinstalled whenever what decides the environment changes (this file, the requirements, the constraints).
$(STAMP): Makefile requirements.txt setup.py $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) $(TORCH)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Build the built-in real sample, train a small NAFSSR on the CPU for a few minutes, test it against bicubic.
quickstart: $(STAMP)
	$(BIN)/python scripts/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=20 tests

# Deliberate breakages, each in a temporary copy of the tree, with the tests that must catch it (not part of `make test`).
mutants: $(STAMP)
	$(BIN)/python scripts/mutants.py

clean-quickstart:
	rm -rf experiments/quickstart_NAFSSR_x4 results/quickstart_NAFSSR_x4 tb_logger/quickstart_NAFSSR_x4
