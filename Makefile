# Two commands on a fresh machine (Python 3.11 + package registries):
#   make demo   - both pipelines against the sandbox, then again to show they are incremental
#   make test   - lint, type checks and every test
# Every third-party package comes from requirements/lock.txt (exact versions, hashes); `make lock`
# refreshes it. See README "Reproducible installs".
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed-stamp
LOCK := requirements/lock.txt
PACKAGES := common sandbox tap-orocommerce target-mailchimp tap-mailchimp-engagement target-orocommerce
PYPKGS := common/oromc_common sandbox/oromc_sandbox tap-orocommerce/tap_orocommerce \
          target-mailchimp/target_mailchimp tap-mailchimp-engagement/tap_mailchimp_engagement \
          target-orocommerce/target_orocommerce
# Two workers (CI has 2 cores; four were not faster); tests sharing a module-scoped fixture stay on one
# worker (conftest.py).
PYTEST_ARGS ?= -n 2 --dist loadgroup
# `make lock` refreshes every pin to the newest version the bounds allow; `make lock KEEP=1` keeps the
# pins and only adds or drops what a changed pyproject.toml / requirements/dev.in asks for.
KEEP ?=

.PHONY: install lock lint typecheck system-packages test demo sandbox sandbox-info bench bench-quick soak clean

$(STAMP): $(LOCK) requirements/uv.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ required"'
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	$(UV) pip install -q --python $(BIN)/python --require-hashes -r $(LOCK) \
	  || { echo "-> retrying from uv's cache only (is the package index reachable?)" >&2; \
	       UV_OFFLINE=1 $(UV) pip install -q --python $(BIN)/python --require-hashes -r $(LOCK); } \
	  || { echo "Cannot install the locked packages (requirements/lock.txt): the package index is" \
	            "not reachable and uv's cache lacks some of them. Connect once; later installs" \
	            "work offline from the cache." >&2; exit 1; }
	$(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation $(addprefix -e ./,$(PACKAGES))
	touch $(STAMP)

install: $(STAMP)

lock: install
	$(BIN)/python scripts/lock.py $(if $(KEEP),--keep)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy $(PYPKGS)

system-packages:
	bash scripts/ensure_system_packages.sh

# The crash/resume suite (tests/e2e/test_kill_resume.py) runs all 22 kill points per job, 3 at once
# (each in its own sandbox and Meltano project); `make test KILL_RESUME_POINTS=5` runs 5 of them
# (spread evenly: one of each kind of point), KILL_RESUME_PARALLEL=n another number at once.
KILL_RESUME_POINTS ?=
KILL_RESUME_PARALLEL ?= 3

# Bytecode is written (outside the source tree): with PYTHONDONTWRITEBYTECODE set, every `meltano run`
# of the end-to-end tests compiled Meltano and its plugins again (about 3 of its 7 CPU seconds).
test: lint typecheck system-packages
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache \
	  KILL_RESUME_POINTS=$(KILL_RESUME_POINTS) KILL_RESUME_PARALLEL=$(KILL_RESUME_PARALLEL) \
	  $(BIN)/pytest $(PYTEST_ARGS)

sandbox: install
	@echo "Sandbox as in the demo, with four OroCommerce customizations turned on:"
	@echo "  --shoppinglists            shopping lists exposed in the back-office API (abandoned carts)"
	@echo "  --order-campaign-relation  a custom 'campaign' relation on orders (conversions)"
	@echo "  --consent-source customer_user_field  marketing consent in a custom boolean field on customer users"
	@echo "  --campaign-statistics-fields  custom fields mc_* on campaigns (campaign results)"
	@echo "Stock Oro has none: '$(BIN)/sandbox serve --oro-port 8801 --mailchimp-port 8802' runs without them."
	$(BIN)/sandbox serve --oro-port 8801 --mailchimp-port 8802 --shoppinglists --order-campaign-relation \
		--consent-source customer_user_field --campaign-statistics-fields

sandbox-info: install
	@$(BIN)/sandbox info --json

demo: install
	$(BIN)/python scripts/demo.py

# Whole jobs (`meltano run audience-sync`) against the sandbox with realistic latency: bench/results/.
bench: install
	$(BIN)/python bench/run_all.py

bench-quick: install
	$(BIN)/python bench/run_all.py --quick

# Both jobs every minute for SOAK_MINUTES (default 30) against a changing sandbox (not in `make test`):
# RSS of every process, state size and backlog per cycle -> bench/results/soak.json and soak.png
SOAK_MINUTES ?= 30
soak: install
	$(BIN)/python scripts/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .meltano output
