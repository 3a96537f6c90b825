# The project's commands. Each target first makes sure the toolchain is
# there (scripts/ensure-deps.sh installs Erlang from Debian packages when it
# can, and otherwise says what to install).
#
#   make         builds target/release/reckon-dump, then runs make test
#   make test    every check and test; ends with "N passed, M failed"
#   make upgrade-test  hot upgrades of a running release under load (also in make test)
#   make demo    a service with a bounded database pool, bursts and an outage, run
#                unprotected then protected by sluice, each in a release node; prints
#                a line a second and a summary, writes _build/demo/report/index.html
#   make demo KEEP=1   the same, and keeps the protected node running to attach to
#   make bench   benchmarks (BENCH_ONLY=drop make bench for one suite)
#   make docs    API documentation: apps/sluice/doc/index.html, apps/reckon/doc/index.html
#   make clean   remove build output

.POSIX:
.PHONY: all deps reckon-dump test upgrade-test demo bench docs clean

# The default target also builds the reckon-dump binary (target/release/).
all: reckon-dump test

reckon-dump:
	cargo build --release --locked -p reckon_cli
	@echo "reckon-dump: target/release/reckon-dump (or: cargo install --path native/reckon_cli)"

deps:
	sh scripts/ensure-deps.sh

test: deps
	bash scripts/test-all.sh

upgrade-test: deps
	bash scripts/upgrade-test.sh

# KEEP=1 keeps the protected node of the demo running (see scripts/demo.sh).
demo: deps
	DEMO_KEEP="$(KEEP)" sh scripts/demo.sh

# BENCH_ONLY reaches scripts/bench.sh from the environment or the make command line.
bench: deps
	sh scripts/bench.sh

docs: deps
	rebar3 edoc

# Generated files only (apps/*/doc may also hold hand-written overview.edoc).
clean:
	rm -rf _build target apps/*/priv/*.so
	rm -f apps/*/doc/*.html apps/*/doc/stylesheet.css apps/*/doc/erlang.png apps/*/doc/edoc-info
