/*
 * AWS Nitro Enclaves machine (-M nitro)
 *
 * The machine of an enclave that the Nitro hypervisor runs (with
 * -accel nitro): guest RAM from huge pages (machine-ram.c), the enclave
 * image in it at the offset the driver asks for (image.c), its
 * measurements published as the properties pcr0, pcr1, pcr2 and pcr8
 * (measure.c), and the enclave's CID once it runs (enclave-cid).
 *
 * The machine hosts the nitro vsock bus (at /machine/nitro-vsock), with
 * the registry that lets tools find the enclave (registry.c).
 * Unless -nodefaults, it adds the heartbeat device and, in debug mode, the
 * console device, on the serial chardev (on a null chardev without one:
 * the registry's console socket shows the console).  An enclave whose heartbeat
 * nothing answers panics at boot: the machine refuses to start one
 * without a nitro-heartbeat, unless external-heartbeat=on says that
 * another process answers it.
 *
 * The accelerator owns the enclave's life; the bridge of the vsock bus
 * listens to it for the devices (include/hw/nitro/vsock-bus.h).
 *
 * For libvirt: the machine requires the nitro accelerator (it replaces
 * libvirt's generic -accel), accepts acpi=on|off, and on x86 answers the
 * vCPU query that libvirt makes after start (vcpus.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-common.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "chardev/char.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "hw/nitro/machine.h"
#include "hw/nitro/vsock-bus.h"
#include "hw/qdev-properties.h"
#include "hw/arm/machines-qom.h"
#include "system/address-spaces.h"
#include "system/nitro-accel.h"
#include "system/system.h"
#include "image.h"
#include "machine-ram.h"
#include "measure.h"
#include "parent.h"


struct NitroMachineState {
    MachineState parent_obj;

    /* Properties */
    uint64_t hugepage_size;
    OnOffAuto acpi;
    bool external_heartbeat;

    /* The parent's IAM role ARN and instance ID, for PCR3 and PCR4 */
    char *parent_iam_role;
    char *parent_instance_id;

    NitroImage image;
    NitroMeasure *measure;
};

static bool nitro_machine_check_accel(Error **errp)
{
    ERRP_GUARD();

    if (!nitro_enabled()) {
        error_setg(errp, "the nitro machine runs only with the nitro "
                   "accelerator");
        error_append_hint(errp, "Add -accel nitro (on a Nitro Enclaves "
                          "parent instance, or on the simulator).\n");
        return false;
    }
    return true;
}

/*
 * The enclave's vCPUs are host cores that the Nitro hypervisor runs; QEMU
 * creates no CPU for them.  -cpu host says so, any other model would lie.
 */
static bool nitro_machine_check_cpu(MachineState *ms, Error **errp)
{
    ERRP_GUARD();

    if (ms->cpu_type && !g_str_has_prefix(ms->cpu_type, "host-")) {
        g_autofree char *model = cpu_model_from_type(ms->cpu_type);

        error_setg(errp, "the vCPUs of an enclave are host cores, not '%s'",
                   model);
        error_append_hint(errp, "Leave -cpu out, or use -cpu host.\n");
        return false;
    }
    return true;
}

/* Options that have no meaning for an enclave are errors, not ignored. */
static bool nitro_machine_check_options(MachineState *ms, Error **errp)
{
    ERRP_GUARD();

    if (ms->firmware) {
        error_setg(errp, "-bios has no meaning for an enclave");
        error_append_hint(errp, "The Nitro hypervisor boots the enclave's "
                          "kernel: give it with -kernel.\n");
        return false;
    }
    if (ms->smp.max_cpus > ms->smp.cpus) {
        error_setg(errp, "an enclave cannot hot-plug vCPUs: maxcpus=%u is "
                   "more than its %u vCPUs", ms->smp.max_cpus, ms->smp.cpus);
        error_append_hint(errp, "Drop maxcpus from -smp.\n");
        return false;
    }
    if (ms->maxram_size > ms->ram_size) {
        error_setg(errp, "an enclave cannot hot-plug memory: maxmem is "
                   "more than its %" PRIu64 " MiB", ms->ram_size / MiB);
        error_append_hint(errp, "Drop maxmem and slots from -m.\n");
        return false;
    }
    return true;
}

/* The nitro vsock bus, and its default devices */
static bool nitro_machine_create_vsock(NitroMachineState *nms, Error **errp)
{
    MachineState *ms = MACHINE(nms);
    DeviceState *bridge = qdev_new(TYPE_NITRO_VSOCK_BRIDGE);
    BusState *bus;

    qdev_prop_set_bit(bridge, "debug-mode", nitro_debug_mode());
    qdev_prop_set_uint64(bridge, "image-size", nms->image.info.size);
    qdev_prop_set_uint64(bridge, "ram-size", ms->ram_size);
    qdev_prop_set_bit(bridge, "external-heartbeat", nms->external_heartbeat);
    object_property_add_child(OBJECT(nms), "nitro-vsock", OBJECT(bridge));
    if (!sysbus_realize_and_unref(SYS_BUS_DEVICE(bridge), errp)) {
        return false;
    }
    bus = BUS(&NITRO_VSOCK_BRIDGE(bridge)->bus);
    /* Even with -nodefaults (libvirt): tools find every enclave QEMU */
    if (!qdev_realize_and_unref(qdev_new(TYPE_NITRO_REGISTRY), bus, errp)) {
        return false;
    }

    if (!defaults_enabled()) {
        return true;
    }
    if (!qdev_realize_and_unref(qdev_new(TYPE_NITRO_HEARTBEAT), bus, errp)) {
        return false;
    }
    if (nitro_debug_mode()) {
        DeviceState *console = qdev_new(TYPE_NITRO_SERIAL_VSOCK);
        /* Without -serial, for the registry's console socket only */
        Chardev *chr = serial_hd(0) ?: qemu_chr_new("nitro-console", "null",
                                                    NULL);

        qdev_prop_set_chr(console, "chardev", chr);
        if (!qdev_realize_and_unref(console, bus, errp)) {
            return false;
        }
    }
    return true;
}

static void nitro_machine_init(MachineState *ms)
{
    NitroMachineState *nms = NITRO_MACHINE(ms);
    Error *err = NULL;

    if (!nitro_vcpus_create(&err) ||
        !nitro_machine_check_accel(&err) ||
        !nitro_machine_check_cpu(ms, &err) ||
        !nitro_machine_check_options(ms, &err) ||
        !nitro_ram_check(ms, &err) ||
        !nitro_image_load(ms, &nms->image, &err) ||
        !nitro_machine_create_vsock(nms, &err)) {
        error_report_err(err);
        exit(1);
    }
    /*
     * Guest-physical addresses are offsets into the donated RAM, as the
     * image offset is: until the enclave starts, pmemsave, xp, sum and
     * dump-guest-memory read what the enclave will boot from.
     */
    memory_region_add_subregion(get_system_memory(), 0, ms->ram);
    nms->measure = nitro_measure_start(&nms->image);
}

static bool nitro_machine_create_memdev(MachineState *ms, const char *path,
                                        Error **errp)
{
    ERRP_GUARD();

    if (!nitro_machine_check_accel(errp)) {
        return false;
    }
    if (path) {
        error_setg(errp, "-mem-path is not supported by the nitro machine");
        error_append_hint(errp, "Guest RAM is a hugetlb memfd; choose its "
                          "page size with -machine nitro,hugepage-size=, "
                          "or give -machine memory-backend=.\n");
        return false;
    }
    return nitro_ram_create_default(ms, NITRO_MACHINE(ms)->hugepage_size,
                                    errp);
}

static void nitro_machine_get_hugepage_size(Object *obj, Visitor *v,
                                            const char *name, void *opaque,
                                            Error **errp)
{
    visit_type_size(v, name, &NITRO_MACHINE(obj)->hugepage_size, errp);
}

/*
 * The machine's own properties take effect when it is created: afterwards
 * (qom-set), a new value would change nothing but what queries report.
 */
static bool nitro_machine_settable(const char *name, Error **errp)
{
    if (phase_check(PHASE_MACHINE_INITIALIZED)) {
        error_setg(errp, "%s cannot change once the machine is created",
                   name);
        return false;
    }
    return true;
}

static void nitro_machine_set_hugepage_size(Object *obj, Visitor *v,
                                            const char *name, void *opaque,
                                            Error **errp)
{
    uint64_t value;

    if (!nitro_machine_settable(name, errp) ||
        !visit_type_size(v, name, &value, errp)) {
        return;
    }
    if (!is_power_of_2(value) || value < NITRO_MEM_ALIGN) {
        error_setg(errp, "hugepage-size must be a power of two of at least "
                   "2 MiB, such as 2M or 1G");
        return;
    }
    NITRO_MACHINE(obj)->hugepage_size = value;
}

/*
 * libvirt passes acpi=on|off to every machine that has the property, and
 * the removed -no-acpi option to x86 machines that do not.  The Nitro
 * hypervisor, not QEMU, gives the enclave its firmware tables: accept the
 * value and ignore it.
 */
static void nitro_machine_get_acpi(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    visit_type_OnOffAuto(v, name, &NITRO_MACHINE(obj)->acpi, errp);
}

static void nitro_machine_set_acpi(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    if (nitro_machine_settable(name, errp)) {
        visit_type_OnOffAuto(v, name, &NITRO_MACHINE(obj)->acpi, errp);
    }
}

static bool nitro_machine_get_external_heartbeat(Object *obj, Error **errp)
{
    return NITRO_MACHINE(obj)->external_heartbeat;
}

static void nitro_machine_set_external_heartbeat(Object *obj, bool value,
                                                 Error **errp)
{
    if (nitro_machine_settable("external-heartbeat", errp)) {
        NITRO_MACHINE(obj)->external_heartbeat = value;
    }
}

static void nitro_machine_get_cid(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    uint64_t cid = nitro_enclave_cid();

    visit_type_uint64(v, name, &cid, errp);
}

static char *nitro_machine_get_enclave_state(Object *obj, Error **errp)
{
    return g_strdup(nitro_enclave_state());
}

static char *nitro_machine_get_pcr0(Object *obj, Error **errp)
{
    return nitro_measure_get_pcr(NITRO_MACHINE(obj)->measure, EIF_PCR0, errp);
}

static char *nitro_machine_get_pcr1(Object *obj, Error **errp)
{
    return nitro_measure_get_pcr(NITRO_MACHINE(obj)->measure, EIF_PCR1, errp);
}

static char *nitro_machine_get_pcr2(Object *obj, Error **errp)
{
    return nitro_measure_get_pcr(NITRO_MACHINE(obj)->measure, EIF_PCR2, errp);
}

static char *nitro_machine_get_pcr8(Object *obj, Error **errp)
{
    return nitro_measure_get_pcr(NITRO_MACHINE(obj)->measure, EIF_PCR8, errp);
}

static char *nitro_machine_get_iam_role(Object *obj, Error **errp)
{
    return g_strdup(NITRO_MACHINE(obj)->parent_iam_role ?: "");
}

static void nitro_machine_set_iam_role(Object *obj, const char *value,
                                       Error **errp)
{
    NitroMachineState *nms = NITRO_MACHINE(obj);

    if (nitro_machine_settable("parent-role", errp)) {
        g_free(nms->parent_iam_role);
        nms->parent_iam_role = *value ? g_strdup(value) : NULL;
    }
}

static char *nitro_machine_get_instance_id(Object *obj, Error **errp)
{
    return g_strdup(NITRO_MACHINE(obj)->parent_instance_id ?: "");
}

static void nitro_machine_set_instance_id(Object *obj, const char *value,
                                          Error **errp)
{
    NitroMachineState *nms = NITRO_MACHINE(obj);

    if (nitro_machine_settable("parent-id", errp) &&
        (!*value || nitro_parent_check_instance_id(value, errp))) {
        g_free(nms->parent_instance_id);
        nms->parent_instance_id = *value ? g_strdup(value) : NULL;
    }
}

/* PCR @pcr, measured from what the parent says of itself in -M nitro,@opt */
static char *nitro_machine_parent_pcr(const char *value, const char *what,
                                      int pcr, const char *opt, Error **errp)
{
    if (!value) {
        error_setg(errp, "the parent's %s is not known", what);
        error_append_hint(errp, "Nitro measures it into PCR%d; give it with "
                          "-M nitro,%s.\n", pcr, opt);
        return NULL;
    }
    return nitro_parent_pcr(value, errp);
}

static char *nitro_machine_get_pcr3(Object *obj, Error **errp)
{
    return nitro_machine_parent_pcr(NITRO_MACHINE(obj)->parent_iam_role,
                                    "IAM role", 3, "parent-role=ARN", errp);
}

static char *nitro_machine_get_pcr4(Object *obj, Error **errp)
{
    return nitro_machine_parent_pcr(NITRO_MACHINE(obj)->parent_instance_id,
                                    "instance ID", 4, "parent-id=ID", errp);
}

static void nitro_machine_instance_init(Object *obj)
{
    /* 0: the largest free pages first */
    NITRO_MACHINE(obj)->hugepage_size = 0;
}

static bool nitro_machine_get_allow_small_memory(Object *obj, Error **errp)
{
    return NITRO_MACHINE(obj)->image.allow_small_memory;
}

static void nitro_machine_set_allow_small_memory(Object *obj, bool value,
                                                 Error **errp)
{
    if (nitro_machine_settable("allow-small-memory", errp)) {
        NITRO_MACHINE(obj)->image.allow_small_memory = value;
    }
}

static void nitro_machine_class_init(ObjectClass *oc, const void *data)
{
    MachineClass *mc = MACHINE_CLASS(oc);

    mc->desc = "AWS Nitro Enclave (needs -accel nitro)";
    mc->init = nitro_machine_init;
    mc->create_default_memdev = nitro_machine_create_memdev;
    mc->default_ram_id = "nitro.ram";
    /* Even when libvirt passes its generic -accel first */
    mc->required_accel = "nitro";
    mc->default_ram_size = 512 * MiB;
    mc->default_cpus = 2;
    mc->max_cpus = 1024;
    mc->no_parallel = 1;
    mc->no_floppy = 1;
    mc->no_cdrom = 1;

    object_class_property_add(oc, "hugepage-size", "size",
                              nitro_machine_get_hugepage_size,
                              nitro_machine_set_hugepage_size, NULL, NULL);
    object_class_property_set_description(oc, "hugepage-size",
        "Huge page size of the default guest RAM, any size the host offers "
        "(2M, 32M, 1G...); by default the largest free pages first, mixing "
        "sizes as nitro-cli's allocator reserves them");
    object_class_property_add(oc, "acpi", "OnOffAuto",
                              nitro_machine_get_acpi, nitro_machine_set_acpi,
                              NULL, NULL);
    object_class_property_set_description(oc, "acpi",
        "Accepted for management layers such as libvirt, and ignored: the "
        "Nitro hypervisor gives the enclave its firmware tables");
    object_class_property_add_bool(oc, "external-heartbeat",
                                   nitro_machine_get_external_heartbeat,
                                   nitro_machine_set_external_heartbeat);
    object_class_property_set_description(oc, "external-heartbeat",
        "Another process answers the enclave's heartbeat: start the enclave "
        "without a nitro-heartbeat device (default off)");
    object_class_property_add_bool(oc, "allow-small-memory",
                                   nitro_machine_get_allow_small_memory,
                                   nitro_machine_set_allow_small_memory);
    object_class_property_set_description(oc, "allow-small-memory",
        "Accept less memory than 4 times the image size, which nitro-cli "
        "refuses because the enclave kernel unpacks its initramfs into it "
        "(default off)");
    object_class_property_add(oc, "enclave-cid", "uint64",
                              nitro_machine_get_cid, NULL, NULL, NULL);
    object_class_property_set_description(oc, "enclave-cid",
        "vsock CID of the enclave once it has started (0 before)");
    object_class_property_add_str(oc, "enclave-state",
                                  nitro_machine_get_enclave_state, NULL);
    object_class_property_set_description(oc, "enclave-state",
        "The enclave's life: created, prepared, running, stopping (QEMU "
        "terminates it and copies its console; query-status still says "
        "running), stopped");
    object_class_property_add_str(oc, "pcr0", nitro_machine_get_pcr0, NULL);
    object_class_property_set_description(oc, "pcr0",
        "PCR0 of the enclave image: kernel, cmdline and ramdisks (hex)");
    object_class_property_add_str(oc, "pcr1", nitro_machine_get_pcr1, NULL);
    object_class_property_set_description(oc, "pcr1",
        "PCR1 of the enclave image: kernel, cmdline, first ramdisk (hex)");
    object_class_property_add_str(oc, "pcr2", nitro_machine_get_pcr2, NULL);
    object_class_property_set_description(oc, "pcr2",
        "PCR2 of the enclave image: the ramdisks after the first (hex)");
    object_class_property_add_str(oc, "parent-role",
                                  nitro_machine_get_iam_role,
                                  nitro_machine_set_iam_role);
    object_class_property_set_description(oc, "parent-role",
        "ARN of the parent instance's IAM role, which Nitro measures into "
        "PCR3");
    object_class_property_add_str(oc, "parent-id",
                                  nitro_machine_get_instance_id,
                                  nitro_machine_set_instance_id);
    object_class_property_set_description(oc, "parent-id",
        "ID of the parent instance (i-...), which Nitro measures into PCR4");
    object_class_property_add_str(oc, "pcr3", nitro_machine_get_pcr3, NULL);
    object_class_property_set_description(oc, "pcr3",
        "PCR3: the parent's IAM role, from parent-role (hex)");
    object_class_property_add_str(oc, "pcr4", nitro_machine_get_pcr4, NULL);
    object_class_property_set_description(oc, "pcr4",
        "PCR4: the parent's instance ID, from parent-id (hex)");
    object_class_property_add_str(oc, "pcr8", nitro_machine_get_pcr8, NULL);
    object_class_property_set_description(oc, "pcr8",
        "PCR8 of a signed enclave image: its signing certificate (hex)");
}

static const TypeInfo nitro_machine_info = {
    .name = TYPE_NITRO_MACHINE,
    .parent = TYPE_MACHINE,
    .instance_size = sizeof(NitroMachineState),
    .instance_init = nitro_machine_instance_init,
    .class_init = nitro_machine_class_init,
    .interfaces = (const InterfaceInfo[]) {
        { TYPE_TARGET_AARCH64_MACHINE },
        { }
    },
};

static void nitro_machine_register_types(void)
{
    type_register_static(&nitro_machine_info);
}

type_init(nitro_machine_register_types)
