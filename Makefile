# infra.k3s: two commands from a fresh Debian machine (as root):
#   make lab    bring up a three-host lab and converge playbooks/site.yml on it
#   make test   lint, sanity, pytest and every Molecule scenario
SHELL := /bin/bash
.DEFAULT_GOAL := help

export CONTAINERS_CONF := $(CURDIR)/tests/lab/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_HOME := $(CURDIR)/.ansible
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard extensions/molecule/*/molecule.yml)))

.PHONY: help test lab lab-down bench setup lint sanity pytest molecule collection docs

help:
	@echo "make lab       bring up a three-host lab and converge infra.k3s.site on it"
	@echo "make lab-down  remove the lab"
	@echo "make test      ansible-lint, ansible-test sanity, pytest, every Molecule scenario"
	@echo "make bench     time a cold and an idempotent converge of site.yml on the lab"
	@echo "make docs      render the collection's documentation site (antsibull-docs, Sphinx) into .cache/docs"

test:
	@MAKE_TARGET=test tests/bin/test.sh

lab:
	@MAKE_TARGET=lab tests/bin/setup.sh system venv upstream collection images
	@tests/lab/lab.sh up

lab-down:
	@tests/lab/lab.sh down

bench:
	@MAKE_TARGET=bench tests/bin/setup.sh system venv upstream collection images
	@tests/lab/bench.sh

# Single stages, for development (they assume `make test` or `make setup` ran once).
setup:
	@tests/bin/setup.sh system venv upstream collection images

collection:
	@tests/bin/setup.sh collection

# ansible-lint, then antsibull-docs on every module's, plugin's and role's documentation as `make docs`
# renders it (the collection as installed by `make collection`): its lint, and the pages themselves
# (--fail-on-error: documentation that does not validate fails instead of becoming an error page).
lint: collection
	ansible-lint --profile production
	antsibull-docs lint-collection-docs --plugin-docs .collections/ansible_collections/infra/k3s
	@d=$$(mktemp -d) && chmod 0755 "$$d" && antsibull-docs collection --use-current --fail-on-error --dest-dir "$$d" infra.k3s >/dev/null; \
	  rc=$$?; rm -rf "$$d"; exit $$rc

docs:
	@tests/bin/docs.sh

sanity:
	tests/sanity/run.sh

# Two workers (this project's machines have 2 cores), a test file to one worker: files keep their
# module-scoped servers, their order and their fixed names (network namespaces, a podman network).
# tests/conftest.py hands out the longest files first. tests/standins/*/tests/ test the stand-ins.
pytest:
	pytest -n 2 --dist loadfile tests/unit tests/integration tests/standins

# Scenarios side by side in MOLECULE_LANES lanes (default 2), see tests/bin/molecule.sh.
molecule: collection
	@tests/bin/molecule.sh $(SCENARIOS)
