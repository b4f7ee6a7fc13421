/*
 * AWS Nitro Enclaves machine: the PC machine type that libvirt probes
 *
 * When it probes an x86 QEMU, libvirt (11.3 at least) lists the
 * properties of the abstract PC machine type, "generic-pc-machine", and
 * crashes (a NULL dereference) when QEMU has no such type: as in a build
 * whose only x86 machines are nitro, nitro-enclave and microvm
 * (--with-devices-x86_64=nitro).  Such a build registers an abstract
 * type of that name, with no property of its own, that nothing can
 * create; builds with the PC machines (CONFIG_PC) have the real one and
 * not this file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/target-info.h"
#include "hw/boards.h"

static const TypeInfo nitro_pc_probe_info = {
    .name = "generic-pc-machine",
    .parent = TYPE_MACHINE,
    .abstract = true,
};

static void nitro_pc_probe_register_types(void)
{
    if (!target_aarch64()) {
        type_register_static(&nitro_pc_probe_info);
    }
}

type_init(nitro_pc_probe_register_types)
