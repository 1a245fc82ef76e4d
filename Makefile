# mcplink build: the engine library, the CLI/REPL binary, tests, demo.
# `make help` lists the targets.

BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= cc
VERSION := 0.1.0

PKGS    := lua5.4 libcurl openssl sqlite3 libpq libedit
# libcurl, libpq, libedit and libcrypto are opened with dlopen on first need (core/dynlib.h),
# and libssl comes with libcurl: mcplink and libmcplink.so link only LINK_PKGS, so a command that needs none
# of them maps none of them. Tests and benchmarks that call libcurl or libpq themselves link them
# too (TEST_LIBS).
LINK_PKGS := lua5.4 sqlite3
DL_PKGS   := libcurl libpq libedit libssl libcrypto
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wwrite-strings -Wpointer-arith -Wformat=2 -Wundef -Wvla \
           -Wold-style-definition -Wmissing-declarations -Wimplicit-fallthrough \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) $(SAN) \
           -DMCPL_VERSION='"$(VERSION)"' -Icore -I$(BUILD) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    := $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS := $(LIBS) $(shell pkg-config --libs $(DL_PKGS) 2>/dev/null)
# The mcplink binary links Lua and SQLite statically, from the .a files of Debian's liblua5.4-dev
# and libsqlite3-dev (which `make deps` installs): a one-shot command then binds none of their
# symbols when it starts (README "Performance"). After a Debian update of either, run `make`
# again. CLI_STATIC=0 links them dynamically, as libmcplink.so does (what hosts load).
#
# Debian's static libraries are built without -fPIC, and that code is faster: a warm tool.call
# takes ~7-10% less CPU with them (README "Performance"). They cannot go into libmcplink.so. The
# benchmarks link libmcplink.a as mcplink does (BENCH_LIBS), and measure `tool.call` once more with
# the system's shared Lua and SQLite, as libmcplink.so and the Python binding load them
# (engine_bench_shared).
CLI_STATIC ?= 1
ifeq ($(CLI_STATIC),1)
CLI_LIBS := -Wl,-Bstatic $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -Wl,-Bdynamic -lpthread -lm -ldl
else
CLI_LIBS := $(LIBS)
endif
BENCH_LIBS := $(CLI_LIBS) $(shell pkg-config --libs $(DL_PKGS) 2>/dev/null)
LDFLAGS ?=

LIB_SRC  := $(sort $(wildcard core/*.c))
CLI_SRC  := $(sort $(wildcard core/cli/*.c))
LUA_SRC  := $(sort $(shell find lua -name '*.lua'))
LIB_OBJ  := $(LIB_SRC:core/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/lua_embed.o \
            $(BUILD)/obj/policy_embed.o
CLI_OBJ  := $(CLI_SRC:core/cli/%.c=$(BUILD)/obj/cli/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HDRS     := $(wildcard core/*.h core/cli/*.h)

.PHONY: all deps check-deps check-test-deps fuzz-deps lint test test-run console tsan tsan-build-run tsan-run asan demo demo-instances install \
        clean help fuzz bench fixtures bench-ops

all: check-deps $(BUILD)/mcplink $(BUILD)/libmcplink.a $(BUILD)/libmcplink.so

help:
	@echo "make            build $(BUILD)/mcplink, libmcplink.a, libmcplink.so"
	@echo "make deps       install the missing build and test packages (root) or print the command"
	@echo "make test       install the test packages, build and run every test (prove)"
	@echo "make lint       luacheck over the Lua, the C style, floors and curl type checks"
	@echo "make asan       build with ASan+UBSan into build-asan/ and run the tests there"
	@echo "make tsan       the multi-threaded tests under ThreadSanitizer (build-tsan/)"
	@echo "make demo       set up and run the demo scenario"
	@echo "make fuzz       libFuzzer targets, FUZZ_TIME seconds each (installs or requires clang)"
	@echo "make console    the reference web console (Python) on a demo database, https://127.0.0.1:8443/"
	@echo "make demo-instances  two engine processes on one PostgreSQL database"
	@echo "make fixtures   npm ci in tests/fixtures (MCP servers, conformance suite) and the test CA"
	@echo "make install    install into PREFIX (default /usr/local)"
	@echo "make bench-ops  warm op latency through the C API, SQLite and PostgreSQL (medians, ratios)"
	@echo "make bench      engine vs raw libcurl floor vs SDK clients (bench/results/DATE.md)"
	@echo "make bench-quick  every benchmark client once on small inputs (< 60 s)"

# Dependencies come in groups (core/tools/deps.sh): a plain `make` needs only
# the build packages; `make test` and `make fuzz` install or require theirs.
deps:
	@sh core/tools/deps.sh install build test

check-deps:
	@sh core/tools/deps.sh check build

check-test-deps:
	@sh core/tools/deps.sh check build test

fuzz-deps:
	@sh core/tools/deps.sh install build fuzz

$(BUILD)/obj/%.o: core/%.c $(HDRS) | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/cli/%.o: core/cli/%.c $(HDRS) | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen_embed: core/tools/gen_embed.c | check-deps
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O1 -Wall -Werror -o $@ $< $(shell pkg-config --cflags --libs lua5.4)

$(BUILD)/lua_embed.c: $(BUILD)/gen_embed $(LUA_SRC)
	$(BUILD)/gen_embed lua $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/lua_embed.o: $(BUILD)/lua_embed.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-overlength-strings -c $< -o $@

# The built-in default policy: policies/default.lua, or an empty table of
# entries when that file does not exist (the runner then uses `return {}`).
POLICY_DEFAULT := $(wildcard policies/default.lua)
$(BUILD)/policy_embed.c: $(BUILD)/gen_embed $(POLICY_DEFAULT)
	$(BUILD)/gen_embed policies $(POLICY_DEFAULT) > $@.tmp && \
	  sed -i 's/mcpl_embedded_lua/mcpl_embedded_policies/' $@.tmp && mv $@.tmp $@

$(BUILD)/obj/policy_embed.o: $(BUILD)/policy_embed.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-overlength-strings -c $< -o $@

$(BUILD)/libmcplink.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libmcplink.so exports exactly the functions core/mcplink.h declares (the stable ABI that hosts
# and the Python binding bind); internal symbols, mcpl_ helpers included, stay local. The list is
# read from the preprocessed header (comments gone), so a new public function is exported with it.
$(BUILD)/libmcplink.map: core/mcplink.h
	@mkdir -p $(BUILD)
	@{ echo '{ global:'; $(CC) -E -P $< | grep -o 'mcpl_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | \
	  sort -u | sed 's/.*/  &;/'; echo '  local: *;'; echo '};'; } > $@.tmp
	@grep -q ' mcpl_op;' $@.tmp || { echo "$@: no functions found in core/mcplink.h" >&2; exit 1; }
	@mv $@.tmp $@

$(BUILD)/libmcplink.so: $(LIB_OBJ) $(BUILD)/libmcplink.map
	$(CC) -shared -Wl,-soname,libmcplink.so.0 -Wl,--version-script=$(BUILD)/libmcplink.map \
	  -Wl,--no-undefined $(SAN) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)

$(BUILD)/mcplink: $(CLI_OBJ) $(BUILD)/libmcplink.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libmcplink.a $(CLI_LIBS)

# The unit tests link what libmcplink.so links (the system's shared Lua and SQLite) and, like
# mcplink, not libcurl: they open it on first use, from whichever thread comes first;
# test_store and test_store_crash also call libpq themselves.
UNIT_LIBS = $(LIBS)
$(BUILD)/tests/test_store $(BUILD)/tests/test_store_crash: UNIT_LIBS = $(TEST_LIBS)
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmcplink.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libmcplink.a $(UNIT_LIBS) -lcmocka

# test_outage starts bench/fixture_server itself (killed and restarted on the same port); it is
# built without sanitizers, so a sanitizer run judges the engine, not the fixture.
$(BUILD)/fixtures/fixture_server: bench/fixture_server.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ $< $(shell pkg-config --cflags --libs openssl) -lpthread

$(BUILD)/tests/test_outage: $(BUILD)/fixtures/fixture_server $(BUILD)/certs/server.pem

# Test fixtures: the pinned npm packages of tests/fixtures (MCP servers on the official SDKs,
# the conformance suite, Node 22), installed again when the lock file changes, and the test CA.
# The lock keeps two builds from running npm ci in the same folder at once.
FIXTURES := tests/fixtures
fixtures: $(FIXTURES)/node_modules/.package-lock.json $(BUILD)/certs/server.pem

$(FIXTURES)/node_modules/.package-lock.json: $(FIXTURES)/package.json $(FIXTURES)/package-lock.json
	@command -v npm >/dev/null || { echo "make fixtures: npm is required" >&2; exit 1; }
	flock $${TMPDIR:-/tmp}/mcplink-fixtures-npm-$$(id -u).lock sh -c '[ -f $@ ] && [ $@ -nt $(FIXTURES)/package-lock.json ] || (cd $(FIXTURES) && npm ci --no-audit --no-fund --loglevel=error)'
	@touch $@

$(BUILD)/certs/server.pem: tests/tools/mkcerts.sh
	sh tests/tools/mkcerts.sh $(BUILD)/certs

# make lint: luacheck over the Lua (.luacheckrc knows each environment's globals), the C style
# a compiler does not check (core/tools/cstyle.sh: two-line headers, prefixes, no prototypes
# in .c files), the floors (core/tools/floors.sh: no C files that use each other), and curl.h's
# own type checks of curl_easy_setopt's arguments over the libcurl callers (core/dynlib_curl.h).
# make test-run runs it before the tests.
LUA_LINT := lua policies examples tests/scenarios tests/cli tests/data
lint: check-test-deps $(LIB_OBJ) $(CLI_OBJ)
	@luacheck --formatter plain $(LUA_LINT)
	@sh core/tools/cstyle.sh
	@sh core/tools/floors.sh $(LIB_OBJ) $(CLI_OBJ)
	@for f in core/http_transfer.c core/http_url.c; do \
	  $(CC) $(ALL_CFLAGS) -DDYNLIB_CURL_TYPECHECK -c $$f -o /dev/null || exit 1; done

# test and demo set the machine up first (deps), then re-enter make so the
# package flags are read after the packages exist.
test: deps
	@$(MAKE) --no-print-directory test-run
	@$(MAKE) --no-print-directory tsan-build-run

# The multi-threaded tests again under ThreadSanitizer (its own build dir).
TSAN_TESTS := test_api test_policy test_outage test_calls test_http
tsan: deps
	@$(MAKE) --no-print-directory tsan-build-run

tsan-build-run: check-test-deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g" SAN="-fsanitize=thread" tsan-run

tsan-run: $(TSAN_TESTS:%=$(BUILD)/tests/%)
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" CMOCKA_MESSAGE_OUTPUT=TAP prove --exec '' $^

# One engine instance driven from stdin: the multi-instance tests (tests/pg) start several.
$(BUILD)/tools/mcplink-instance: tests/tools/instance.c $(BUILD)/libmcplink.a core/mcplink.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmcplink.a $(LIBS)

test-run: check-test-deps all $(UNIT_BIN) $(BUILD)/tools/mcplink-instance fixtures
	@$(MAKE) --no-print-directory lint
	@BUILD=$(BUILD) MCPLINK_SAN="$(SAN)" sh tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" test-run

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmcplink.a core/mcplink.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmcplink.a $(BENCH_LIBS)

# the same engine_bench with the system's shared Lua and SQLite (what libmcplink.so loads)
$(BUILD)/bench/engine_bench_shared: bench/engine_bench.c $(BUILD)/libmcplink.a core/mcplink.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libmcplink.a $(TEST_LIBS)

# Benchmarks report medians and ratios to a baseline measured in the same run.
bench-ops: all $(BUILD)/bench/ops_bench
	sh bench/with_pg.sh $(BUILD)/bench/ops_bench

# bench/run.sh: every client side by side (raw libcurl floor, engine C API and CLI, SDK clients);
# bench-quick runs each once on small inputs (CI: tests/cli/bench_quick.t), no timing assertions.
BENCH_BIN := $(BUILD)/bench/fixture_server $(BUILD)/bench/raw_floor $(BUILD)/bench/engine_bench \
             $(BUILD)/bench/engine_bench_shared
$(BENCH_BIN): bench/bench_util.h
bench: all fixtures $(BENCH_BIN)
	BUILD=$(BUILD) sh bench/run.sh

bench-quick: all fixtures $(BENCH_BIN)
	BUILD=$(BUILD) sh bench/run.sh --quick

# libFuzzer targets (tests/fuzz/fuzz_*.c) over URL parsing and the address
# classifier; each runs FUZZ_TIME seconds from its seeds.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 20
fuzz: fuzz-deps
	@mkdir -p $(BUILD)/fuzz
	@for f in $(sort $(wildcard tests/fuzz/fuzz_*.c)); do n=$$(basename $$f .c); \
	  echo "  FUZZ $$n"; \
	  $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icore \
	    $$(pkg-config --cflags lua5.4 libcurl) -o $(BUILD)/fuzz/$$n $$f core/addr.c core/http_url.c \
	    core/dynlib.c core/dynlib_curl.c \
	    $$(pkg-config --libs libcurl lua5.4) -lpthread -lm || exit 1; \
	  mkdir -p $(BUILD)/fuzz/$$n.corpus; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -max_len=512 $(BUILD)/fuzz/$$n.corpus \
	    tests/fuzz/seeds/$$n || exit 1; \
	done

demo: deps
	@$(MAKE) --no-print-directory all fixtures
	@sh examples/demo.sh $(BUILD)

# The reference admin console (examples/console) on a demo database in $(BUILD)/console-demo.
console: deps
	@$(MAKE) --no-print-directory all fixtures
	@sh examples/console/demo.sh $(BUILD)

# two engine processes on one PostgreSQL database (README "Running several instances")
demo-instances: deps
	@$(MAKE) --no-print-directory all fixtures
	@sh examples/instances.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(BUILD)/mcplink $(DESTDIR)$(PREFIX)/bin/mcplink
	install -m 0644 $(BUILD)/libmcplink.a $(DESTDIR)$(PREFIX)/lib/libmcplink.a
	install -m 0755 $(BUILD)/libmcplink.so $(DESTDIR)$(PREFIX)/lib/libmcplink.so.0
	ln -sf libmcplink.so.0 $(DESTDIR)$(PREFIX)/lib/libmcplink.so
	install -m 0644 core/mcplink.h $(DESTDIR)$(PREFIX)/include/mcplink.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@REQUIRES@|$(LINK_PKGS)|' core/tools/mcplink.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mcplink.pc

clean:
	rm -rf build build-asan build-tsan
