# Devices of the x86_64 build of the Nitro Enclaves fork: only the
# machines the project runs and tests (configure --with-devices-x86_64=nitro).

# The emulated enclave machine, for hosts without Nitro hardware.
CONFIG_NITRO_ENCLAVE=y

# The nitro machine, for -accel nitro (on a parent instance or the simulator).
CONFIG_NITRO_MACHINE=y
