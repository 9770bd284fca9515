# modelstream set-up and entry points. The README's two commands are `make demo` and `make test`;
# each builds whatever is missing first: .venv (pinned Python deps), .cache/jvm (pinned Maven jars),
# generated protobuf code. Nothing else is downloaded.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
JARS := .cache/jvm/flink/modelstream-flink.jar
CONSOLE_ASSETS := .cache/console/uPlot.iife.min.js
STAMP := $(VENV)/.installed

.PHONY: setup tools demo test test-fast lint protos jars clean quix
setup: $(STAMP) $(JARS) $(CONSOLE_ASSETS)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# the stock pip cannot build apache-flink's sdist dependencies (crcmod, dill): upgrade it first
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3 setuptools==80.9.0 wheel==0.45.1
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# `package` also runs the JVM parts' unit tests (jvm/src/test)
$(JARS): jvm/pom.xml $(wildcard jvm/src/*/java/modelstream/flink/*.java)
	mvn --batch-mode --quiet -f jvm/pom.xml package

# the console's chart library (uPlot from npm, pinned and integrity-checked), served by the stats service
$(CONSOLE_ASSETS): client/console/assets.py $(STAMP)
	$(BIN)/python -m client.console.assets

# the Quix Streams contender of benchmarks/race.py: a venv of its own (quixstreams needs an older
# confluent-kafka than the project pins)
quix: .venv-quix/.installed
.venv-quix/.installed: benchmarks/quix-requirements.txt benchmarks/quix-constraints.txt
	$(PYTHON) -m venv .venv-quix
	.venv-quix/bin/python -m pip install --quiet --upgrade pip==25.3
	.venv-quix/bin/python -m pip install --quiet -c benchmarks/quix-constraints.txt -r benchmarks/quix-requirements.txt
	touch $@

protos: $(STAMP)
	$(BIN)/python -m protobufs.generate

demo: setup
	$(BIN)/modelstream demo

# `docker compose config` checks docker-compose.yml in the tests; no Docker engine is needed for that.
# The console test drives a headless Chromium (selenium + chromedriver). Where either is missing,
# install Debian's packages (as root); elsewhere the tests that need them are skipped, saying why.
tools:
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null) || \
	    echo "docker compose not available: the compose file test will be skipped"; }
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	    echo "chromium not available: the console page test will be skipped"; }

test: setup tools
	$(BIN)/python -m pytest -q --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q -m "not e2e"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .cache .state
