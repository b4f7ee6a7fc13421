# Devices of the aarch64 build of the Nitro Enclaves fork: only the
# machines the project runs and tests (configure --with-devices-aarch64=nitro).

# The nitro machine, for -accel nitro (on a parent instance or the simulator).
CONFIG_NITRO_MACHINE=y

# The emulated enclave of the simulator's real-boot mode (an arm64 EIF
# under TCG): -M virt, with the vsock of contrib/vhost-user-vsock and the
# NSM on virtio-mmio.  The machine's ACPI tables (unused: the kernel
# boots with a device tree) describe CXL windows, which want the CXL
# devices built.
CONFIG_ARM_VIRT=y
CONFIG_VIRTIO_NSM=y
CONFIG_VHOST_USER_VSOCK=y
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
CONFIG_PCIE_PORT=y
