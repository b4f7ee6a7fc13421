# The Nitro Enclaves fork of QEMU: build, test and export the overlay.
# See README.md.

.PHONY: all check demo patches check-series install uninstall clean fuzz-eif \
	bench mutants

# Where `make install` puts the emulators, qemu-eif and the simulator:
# DESTDIR/PREFIX (see scripts/fork/install.sh)
PREFIX ?= /usr/local
DESTDIR ?=

all:
	scripts/fork/build.sh

check:
	scripts/fork/check.py

# Launch an enclave: on the driver of a parent instance (EIF=app.eif),
# else on the simulator with a sample image
demo: all
	python3 scripts/fork/demo.py

install: all
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' scripts/fork/install.sh

uninstall:
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' scripts/fork/install.sh --uninstall

patches:
	scripts/fork/export-patches.sh

# Build every commit of the exported series, one after the other
check-series:
	scripts/fork/export-patches.sh --no-checkpatch
	scripts/fork/check-series.sh

clean:
	rm -rf build

# The EIF parser under libFuzzer, ASan and UBSan for an hour
fuzz-eif: all
	tests/nitro/eif/fuzz.sh --long

# Launch time and memory for 16 MiB to 1 GiB images, on the simulator
bench: all
	python3 tests/bench/nitro-launch-bench.py build

# Does a test fail when what it covers breaks?  One single-point change
# of the overlay at a time (scripts/fork/mutants.py), and its tests
mutants: all
	python3 scripts/fork/mutants.py
