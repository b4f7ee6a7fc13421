# Devices of the aarch64 build of the Nitro Enclaves fork: only the
# machines the project runs and tests (configure --with-devices-aarch64=nitro).

# The nitro machine, for -accel nitro (on a parent instance or the simulator).
CONFIG_NITRO_MACHINE=y
