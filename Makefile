# Two entry points for a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup system-packages clean

$(STAMP): pyproject.toml constraints/test-server.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/test-server.txt -e '.[aws,gcp,azure,postgres,test]'
	touch $(STAMP)

# Debian's chromium and prometheus for the tests that drive them (as root, when missing; never fails).
system-packages:
	@sh scripts/system-packages.sh

setup: $(STAMP) system-packages

demo: $(STAMP)
	$(BIN)/dispatcher demo

test: $(STAMP) system-packages
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
