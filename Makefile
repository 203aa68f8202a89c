# Two entry points for a fresh machine: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-3.3.30

.PHONY: demo test setup system-packages clean

$(STAMP): pyproject.toml constraints/test-server.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/test-server.txt -e '.[aws,gcp,azure,postgres,test]'
	touch $(STAMP)

# Debian's chromium and prometheus for the tests that drive them (as root, when missing; never fails).
system-packages:
	@sh scripts/system-packages.sh

# checkov in a virtualenv of its own: it pins an old boto3 and ships its own `hcl2` package, which would
# break the project's. Never fails the set-up: tests/terraform/test_checkov.py skips, saying why, without it.
$(CHECKOV_STAMP):
	@($(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/python -m pip install -q checkov==3.3.30 \
		&& touch $(CHECKOV_STAMP)) || echo "note: checkov could not be installed; its test will skip"

setup: $(STAMP) $(CHECKOV_STAMP) system-packages

demo: $(STAMP)
	$(BIN)/dispatcher demo

test: $(STAMP) $(CHECKOV_STAMP) system-packages
	CHECKOV=$${CHECKOV:-$(CURDIR)/$(CHECKOV_VENV)/bin/checkov} $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV)
