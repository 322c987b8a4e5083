# segmentation: `make run` runs the whole job on the embedded demo log; `make test` runs the tests.
# Both set themselves up (a .venv with the package and its test extras) when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := data/generated/transactions.csv.gz
BENCH_STAMP := $(VENV)/.bench-stamp
CDS_STAMP := $(VENV)/.cds-stamp
BENCH_ARGS ?=
PLANTED_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup install check-java run history-demo test test-extended cluster-test connect-test lint docs package bench bench-value bench-incremental planted clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

check-java: ## stop with a clear message unless Java 17 or newer is installed
	@command -v java >/dev/null 2>&1 || { \
	  echo "error: Java 17 or newer is required (Spark 4 runs on the JVM), but 'java' is not on PATH."; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless"; \
	  echo "  macOS:         brew install openjdk@17"; \
	  echo "  then make sure 'java -version' reports 17 or newer (or set JAVA_HOME)."; exit 1; }
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2; exit}'); \
	 major=$$(echo "$$v" | awk -F. '{ if ($$1 == "1") print $$2; else print $$1 }'); \
	 if [ -z "$$major" ] || [ "$$major" -lt 17 ]; then \
	  echo "error: Java 17 or newer is required (Spark 4), but 'java -version' reports '$$v'."; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless"; \
	  echo "  macOS:         brew install openjdk@17"; \
	  echo "  then put it first on PATH or set JAVA_HOME."; exit 1; fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,connect,mlflow]'
	@touch $(STAMP)

# the class-data archive that starts every later local run's JVM about 7 s sooner (segmentation/runtime/class_data.py):
# made once per Java and pyspark, in about 2 minutes; SEGMENTATION_CDS_DIR=off skips it
$(CDS_STAMP): $(STAMP)
	-$(BIN)/python -m segmentation.runtime.class_data
	@touch $(CDS_STAMP)

install: check-java $(STAMP) ## create .venv and install the package with its test extras (what the tests need)

setup: install $(CDS_STAMP) ## make install, then the JVM's class archive that starts later local runs sooner

$(DEMO): | $(STAMP)
	$(BIN)/segmentation generate --output $(DEMO) --truth data/generated/truth.csv

run: setup $(DEMO) ## run the whole job on the generated demo log (conf/demo.yaml: output in output/demo)
	$(BIN)/segmentation run --config conf/demo.yaml

TWO_PERIODS := data/generated/two_periods.csv.gz
$(TWO_PERIODS): | $(STAMP)
	$(BIN)/segmentation generate --periods 2 --output $(TWO_PERIODS) --truth data/generated/two_periods_truth.csv

history-demo: setup $(TWO_PERIODS) ## segments over time: one log at two as-of dates (output/history), the second with its migration
	$(BIN)/segmentation run --config conf/local.yaml --input $(TWO_PERIODS) --output output/history \
	  --set features.as_of=2011-06-10 --set features.window_days=182
	$(BIN)/segmentation run --config conf/local.yaml --input $(TWO_PERIODS) --output output/history \
	  --set features.as_of=2011-12-09 --set features.window_days=182

test: lint ## the checks of make lint, then the test suite (without the tests marked extended)
	$(BIN)/python -m pytest -m "not extended"

test-extended: install ## the tests marked extended: faults, concurrent publishes, other processes and file systems, slow runs (about 25 min)
	$(BIN)/python -m pytest -m extended

lint: install ## ruff (lint and format), mypy on segmentation/ and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: install ## generate the reference pages from the code, then build the docs site into site/ (mkdocs --strict)
	$(BIN)/python -m segmentation.cli.reference docs/reference
	$(BIN)/mkdocs build --strict --site-dir site

cluster-test: install ## spark-submit the packaged job to a real standalone cluster on 127.0.0.1 (part of make test)
	$(BIN)/python -m pytest tests/test_cluster.py

connect-test: install ## run the whole job over a real Spark Connect server on 127.0.0.1 (two of its tests are extended)
	$(BIN)/python -m pytest tests/test_connect.py

package: install ## build what a cluster needs into dist/: the wheel, segmentation.zip (--py-files), conf/, jobs/
	rm -rf dist build
	$(BIN)/python -m build --wheel --outdir dist .
	$(BIN)/python -c "import pathlib, zipfile; \
	  z = zipfile.ZipFile('dist/segmentation.zip', 'w', zipfile.ZIP_DEFLATED); \
	  [z.write(p) for p in sorted(pathlib.Path('segmentation').rglob('*')) if p.suffix in ('.py', '.typed')]; z.close()"
	mkdir -p dist/conf dist/jobs
	cp conf/*.yaml dist/conf/
	cp jobs/*.py dist/jobs/
	@ls -1 dist dist/conf dist/jobs

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,connect,mlflow,bench]'
	@touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP) ## side-by-side benchmark against the tutorial PySpark way and pandas + scikit-learn (bench/README.md)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-value: setup $(BENCH_STAMP) ## what the value stage costs: 20M lines with and without it, and pandas' memory (bench/README.md; about 25 min)
	$(BIN)/python bench/value_cost.py --pandas $(VALUE_ARGS)

bench-incremental: setup $(BENCH_STAMP) ## a nightly incremental score and run against full ones: 20M lines + a new day of 1% (bench/README.md; about 40 min)
	$(BIN)/python bench/incremental_cost.py $(INCREMENTAL_ARGS)

planted: setup ## the choice of k on every planted scenario, two seeds, against the truth (bench/results/planted.md; about 15 min)
	$(BIN)/python bench/planted.py --output bench/results/planted.md $(PLANTED_ARGS)

clean: ## remove generated data, outputs and build files (keeps .venv)
	rm -rf output data/generated dist build *.egg-info .pytest_cache
