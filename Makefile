# The Nitro Enclaves fork of QEMU: build, test and export the overlay.
# See README.md.

.PHONY: all check demo patches clean fuzz-eif bench

all:
	scripts/fork/build.sh

check:
	scripts/fork/check.py

# Launch an enclave: on the driver of a parent instance (EIF=app.eif),
# else on the simulator with a sample image
demo: all
	python3 scripts/fork/demo.py

patches:
	scripts/fork/export-patches.sh

clean:
	rm -rf build

# The EIF parser under libFuzzer, ASan and UBSan for an hour
fuzz-eif: all
	tests/nitro/eif/fuzz.sh --long

# Launch time and memory for 16 MiB to 1 GiB images, on the simulator
bench: all
	python3 tests/bench/nitro-launch-bench.py build
