# The game backend's two commands, and the steps behind them.
#
#   make up      install what is missing, build, start the dev stack
#   make test    build, run every test on a throwaway stack, tear it down
#   make bench   measure our endpoints against nginx's `return 200`
#   make down    stop the dev stack
#   make fuzz    run every fuzz harness for FUZZ_SECONDS (300) each
#   make deb     build the Debian packages into build/deb/

SHELL := /bin/bash
ROOT  := $(CURDIR)

.PHONY: all deps build modules gameserver tools admin docs-tools up down \
        status test unit integration bench fuzz deb clean

all: build

deps:
	@scripts/install-deps

build: deps modules gameserver tools admin

# the operator page (/admin/): our files and the chart library npm pins in
# admin/package-lock.json, copied to build/admin where nginx serves them
ADMIN_SRC := admin/index.html admin/admin.js admin/admin.css
build/admin/.stamp: $(ADMIN_SRC) admin/package-lock.json
	@cd admin && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@mkdir -p build/admin
	@cp $(ADMIN_SRC) admin/node_modules/uplot/dist/uPlot.iife.min.js \
	    admin/node_modules/uplot/dist/uPlot.min.css build/admin/
	@touch $@

admin: build/admin/.stamp

# the matchmaking simulator and engine benchmark (pure C, no nginx)
MM_SIM_SRC := ngx_modules/matchmaking/sim/game_mm_sim.c \
              ngx_modules/matchmaking/game_mm_engine.c
build/game-mm-sim: $(MM_SIM_SRC) ngx_modules/matchmaking/game_mm_engine.h
	@mkdir -p build
	$(CC) -std=c11 -O2 -g -W -Wall -Wpointer-arith -Wno-unused-parameter \
	    -Werror -o $@ $(MM_SIM_SRC) -lm

tools: build/game-mm-sim

# the OpenAPI linter the tests run on docs/openapi.yaml, from the npm
# registry at the versions of docs/package-lock.json, into docs/node_modules
DOCS_TOOLS := docs/node_modules/.package-lock.json
$(DOCS_TOOLS): docs/package.json docs/package-lock.json
	cd docs && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

docs-tools: deps $(DOCS_TOOLS)

modules:
	@auto/build

gameserver:
	@if [ -f gameserver/Makefile ]; then $(MAKE) -s -C gameserver all; fi

up: build
	@scripts/stack up

down:
	@scripts/stack down

status:
	@scripts/stack status

test: build docs-tools
	@scripts/run-tests

unit: deps
	@$(MAKE) -s -C tests/unit run
	@if [ -f gameserver/Makefile ]; then $(MAKE) -s -C gameserver unit; fi

bench: build
	@scripts/bench

# libFuzzer harnesses (tests/fuzz): `make test` runs each for seconds
fuzz: deps modules gameserver
	@$(MAKE) -s -C tests/fuzz fuzz

deb: deps
	@scripts/build-deb

clean:
	rm -rf build docs/node_modules
	@$(MAKE) -s -C tests/unit clean
	@$(MAKE) -s -C tests/fuzz clean
	@if [ -f gameserver/Makefile ]; then $(MAKE) -s -C gameserver clean; fi
