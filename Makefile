# The README's commands. Each installs into .venv first when needed: `make run` only what
# running needs; `make test` adds the test tools (pyspark among them), `make bench` psutil.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
WORKDIR ?= .custseg
DBT_FILES := $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml
MANIFEST := dbt_project/target/manifest.json
# Reproducible installs: every version is pinned in constraints.txt. pip prints what it
# collects and installs (no --quiet): the first install takes a few minutes.
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt

.PHONY: install install-dev install-bench run test dev bench lint format clean

install: $(VENV)/.installed-run $(MANIFEST)
install-dev: $(VENV)/.installed-dev $(MANIFEST)
install-bench: $(VENV)/.installed-bench $(MANIFEST)

$(VENV)/.installed-run: pyproject.toml constraints.txt
	@test -x $(BIN)/python || { echo "== creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "== installing what a run needs into $(VENV) (first time: about 1½ min, 1.2 GB)"
	$(BIN)/python -m pip install --disable-pip-version-check --upgrade "pip>=24"
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run
	@echo "== installing the test tools into $(VENV) (pytest, ruff, pyspark ...: 0.5 GB more)"
	$(PIP) -e '.[dev]'
	@touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-run
	@echo "== installing the benchmark tools into $(VENV)"
	$(PIP) -e '.[bench]'
	@touch $@

# The parsed dbt manifest that the Dagster definitions load.
$(MANIFEST): $(VENV)/.installed-run $(DBT_FILES)
	$(BIN)/custseg parse

run: install
	$(BIN)/custseg run --workdir $(WORKDIR)

# One test process per core (at most 4), each test file whole on one worker so its
# module fixtures run once; TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= auto
test: install-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

# umask 077: the workdir holds customer data, readable by its owner only (docs/operations.md: Privacy).
# Runs left started by a killed process are marked failed first (orchestration/run_monitor.py),
# or they would hold the one run slot and every run launched from the UI would stay queued.
dev: install
	umask 077; mkdir -p $(WORKDIR)/dagster_home
	umask 077; test -f $(WORKDIR)/dagster_home/dagster.yaml || cp orchestration/dagster.yaml $(WORKDIR)/dagster_home/
	DAGSTER_HOME=$(abspath $(WORKDIR))/dagster_home $(BIN)/python -m orchestration.run_monitor
	umask 077; PATH=$(abspath $(BIN)):$$PATH DAGSTER_HOME=$(abspath $(WORKDIR))/dagster_home CUSTSEG_WORKDIR=$(abspath $(WORKDIR)) \
	  $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Benchmarks (benchmarks/README.md): BENCH_SIZES="100000 1000000 10000000 demo real" by default.
# lifetimes, polars and scikit-learn, the comparison baselines and the analyst's script, go
# into their own venv with the project's pinned numpy/pandas/scipy; never into the project's
# dependencies.
bench: install-bench
	test -x benchmarks/.venv-compare/bin/python || $(PYTHON) -m venv benchmarks/.venv-compare
	benchmarks/.venv-compare/bin/python -m pip install --quiet --upgrade "pip>=24"
	benchmarks/.venv-compare/bin/python -m pip install --quiet -c constraints.txt -r benchmarks/requirements-compare.txt
	$(BIN)/python benchmarks/bench.py --compare-python benchmarks/.venv-compare/bin/python \
	  $(if $(BENCH_SIZES),--sizes $(BENCH_SIZES))

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(WORKDIR) dbt_project/target dbt_project/logs .pytest_cache
