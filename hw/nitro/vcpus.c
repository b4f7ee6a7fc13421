/*
 * AWS Nitro Enclaves machine: the enclave's vCPUs, as libvirt sees them
 *
 * Once an x86 guest runs, libvirt reads the unavailable-features of its
 * first vCPU at /machine/unattached/device[0] (query-cpus-fast lists no
 * vCPU here), and refuses to start the domain without it.  The enclave's
 * vCPUs are whole host cores that the Nitro hypervisor runs, so no
 * feature is missing: a placeholder device, created by the machine
 * before any other, says so.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-common.h"
#include "qapi/visitor.h"
#include "qemu/target-info.h"
#include "hw/qdev-core.h"
#include "hw/nitro/machine.h"

static void nitro_vcpus_get_unavailable(Object *obj, Visitor *v,
                                        const char *name, void *opaque,
                                        Error **errp)
{
    strList *none = NULL;

    visit_type_strList(v, name, &none, errp);
}

static void nitro_vcpus_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->desc = "vCPUs of an enclave, for management layers";
    dc->user_creatable = false;
    object_class_property_add(oc, "unavailable-features", "strList",
                              nitro_vcpus_get_unavailable, NULL, NULL, NULL);
    object_class_property_set_description(oc, "unavailable-features",
        "CPU features that the enclave's vCPUs lack: none, they are host "
        "cores");
}

bool nitro_vcpus_create(Error **errp)
{
    if (target_aarch64()) {
        return true;
    }
    return qdev_realize_and_unref(qdev_new(TYPE_NITRO_VCPUS), NULL, errp);
}

static const TypeInfo nitro_vcpus_info = {
    .name = TYPE_NITRO_VCPUS,
    .parent = TYPE_DEVICE,
    .class_init = nitro_vcpus_class_init,
};

static void nitro_vcpus_register_types(void)
{
    type_register_static(&nitro_vcpus_info);
}

type_init(nitro_vcpus_register_types)
