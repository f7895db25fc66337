# The two commands: `make run` (the whole system with one simulated station) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install browser lint unit coverage features bench-smoke bench bench-scaleout kafka kafka-cluster kafka-stop kafka-fetch clean bench-validation bench-console chaos chaos-short

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

run: install
	bash scripts/run.sh

test: install kafka-fetch browser lint unit features bench-smoke chaos-short

# The console's browser test drives Debian's Chromium (Playwright uses it as it is: no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the console's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "the console's browser test needs Chromium: sudo apt-get install chromium" >&2; exit 1; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The unit tests print ocpp_gw's line coverage; `make coverage` also lists the lines missed and fails under 85 %.
unit: install
	$(BIN)/pytest --cov=ocpp_gw --cov-report=term:skip-covered

coverage: install
	$(BIN)/pytest --cov=ocpp_gw --cov-report=term-missing:skip-covered --cov-fail-under=85

features: install
	$(BIN)/behave --format progress3 features

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-smoke: install
	$(BIN)/python -m benchmarks.run --smoke --out $$(mktemp -d)
	$(BIN)/python -m benchmarks.scaleout --stations 300 --out $$(mktemp -d)

# 50,000 idle stations over three gateway processes, each reached by a CSMS call (about 5 minutes).
bench-scaleout: install
	$(BIN)/python -m benchmarks.scaleout $(SCALEOUT_ARGS)

bench-validation: install
	$(BIN)/python -m benchmarks.validation 200000

bench-console: install
	$(BIN)/python -m benchmarks.console 100000

# The fault and abuse suite runs its own local broker (it stops and kills it), on ports 31000-31095.
chaos: install
	bash scripts/kafka/kafka.sh fetch
	$(BIN)/python -m chaos.run $(CHAOS_ARGS)

chaos-short: install
	bash scripts/kafka/kafka.sh fetch
	$(BIN)/python -m chaos.run --short --out $$(mktemp -d)/chaos-results.json

kafka-fetch:
	@if [ -z "$$OCPPGW_KAFKA__SERVERS" ]; then bash scripts/kafka/kafka.sh fetch; fi

kafka:
	bash scripts/kafka/kafka.sh start

# Three brokers with SASL_SSL (SCRAM) and TLS; the gateway's settings are written to the data dir's client.env.
kafka-cluster:
	KAFKA_BROKERS=3 KAFKA_SECURITY=sasl_ssl bash scripts/kafka/kafka.sh start

kafka-stop:
	bash scripts/kafka/kafka.sh stop

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
