# Devices of the x86_64 build of the Nitro Enclaves fork: only the
# machines the project runs and tests (configure --with-devices-x86_64=nitro).

# The emulated enclave machine, for hosts without Nitro hardware.
CONFIG_NITRO_ENCLAVE=y

# The nitro machine, for -accel nitro (on a parent instance or the simulator).
CONFIG_NITRO_MACHINE=y

# The Nitro hypervisor's PCI device, for a parent instance in a guest
# (-M microvm,pcie=on: the machine of -M nitro-enclave, already built)
CONFIG_NITRO_ENCLAVES_PCI=y

# The parent guest's vsock (vhost-user-vsock-pci, served with its
# enclaves' by one contrib/vhost-user-vsock): virtio over PCI
CONFIG_VIRTIO_PCI=y
