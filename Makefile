# Every command the README and CI use, defined once.
# `make demo` and `make test` set up a fresh machine first (deploy/bootstrap.sh).

VENV := .venv/bin
SLA ?= 20
RATE ?= 2

.PHONY: demo test bootstrap lint typecheck pytest unit up down status schemas k8s-rulebook image audit

demo: bootstrap ## local Kafka + Redis, router and monitor workers, demo traffic (Ctrl-C stops)
	$(VENV)/leadrouter dev up
	$(VENV)/leadrouter demo --workers --sla-seconds $(SLA) --rate $(RATE)

test: bootstrap lint typecheck pytest ## everything CI runs

bootstrap:
	@bash deploy/bootstrap.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck:
	$(VENV)/mypy
	$(VENV)/leadrouter schemas --check

pytest:
	$(VENV)/pytest -q

unit: ## the fast tier only: no broker, no redis-server
	$(VENV)/pytest -q tests/unit

up:
	$(VENV)/leadrouter dev up

down:
	$(VENV)/leadrouter dev down

status:
	$(VENV)/leadrouter dev status

schemas:
	$(VENV)/leadrouter schemas

k8s-rulebook: ## regenerate deploy/k8s/configmap-rulebook.yaml after editing rules/examples/default.yaml
	$(VENV)/python -m tests.deploy.manifests

audit: ## pip-audit of the installed runtime dependencies; needs PyPI's JSON API (not in `make test`)
	$(VENV)/python -m tests.deploy.audit

image: ## needs a Docker engine
	docker build -f deploy/docker/Dockerfile -t leadrouter:local .
