# Two commands do all set-up: `make quickstart` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install quickstart test clean-quickstart

$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e . pytest
	touch $(STAMP)

install: $(STAMP)

# Build the built-in real sample, train a small NAFSSR on the CPU for a few minutes, test it against bicubic.
quickstart: $(STAMP)
	$(BIN)/python scripts/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean-quickstart:
	rm -rf experiments/quickstart_NAFSSR_x4 results/quickstart_NAFSSR_x4 tb_logger/quickstart_NAFSSR_x4
