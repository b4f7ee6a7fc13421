# The Nitro Enclaves fork of QEMU: build, test and export the overlay.
# See README.md.

.PHONY: all check demo patches clean fuzz-eif

all:
	scripts/fork/build.sh

check:
	scripts/fork/check.py

demo: all
	scripts/fork/demo.sh

patches:
	scripts/fork/export-patches.sh

clean:
	rm -rf build

# The EIF parser under libFuzzer, ASan and UBSan for an hour
fuzz-eif: all
	tests/nitro/eif/fuzz.sh --long
