# policyfeed — two commands: `make run` (set up and publish the demo) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The demo's unsubscribe links are signed with a random key made on first use and kept in a
# git-ignored file (never in the database); an operator's own POLICYFEED_SECRET wins.
SECRET_FILE := .policyfeed-secret
WITH_SECRET  = POLICYFEED_SECRET="$${POLICYFEED_SECRET:-$$(cat $(SECRET_FILE))}"

.PHONY: run serve test test-slow lint bench docs demo-db catalogs clean format

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(SECRET_FILE):
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

## run: create .venv if missing, install, publish the demo site from posts.db
run: $(STAMP) $(SECRET_FILE)
	$(WITH_SECRET) $(BIN)/policyfeed --db posts.db --config policyfeed.toml publish
	@echo "Site and feeds: public/   Digests: outbox/new/   Preview them: make serve"

## serve: the site, feeds and unsubscribe endpoint on http://127.0.0.1:8000/
serve: $(STAMP) $(SECRET_FILE)
	$(WITH_SECRET) $(BIN)/policyfeed --db posts.db --config policyfeed.toml serve

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## test-slow: the tests that take minutes (the kill test at random moments: KILL_TRIALS=60)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -s -m slow

## lint: ruff check, ruff format --check, mypy on the core
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

## bench: the performance figures (see README, Performance)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## docs: the digest screenshot in docs/digest.png
docs: $(STAMP)
	$(BIN)/python -m policyfeed.digest.screenshot docs/digest.png

## demo-db: rebuild posts.db from the committed demo source in demo/
demo-db: $(STAMP)
	$(BIN)/python demo/make_demo_db.py posts.db

## catalogs: extract the templates' fixed words, update each language's .po, compile the .mo
catalogs: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg --no-location --sort-output -o templates/locales/messages.pot .
	$(BIN)/pybabel -q update -i templates/locales/messages.pot -d templates/locales --no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/pybabel -q compile -d templates/locales --statistics

clean:
	rm -rf $(VENV) build dist public outbox preview .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
