/*
 * AWS Nitro Enclaves machine (-M nitro)
 *
 * The machine of an enclave that the Nitro hypervisor runs (with
 * -accel nitro): guest RAM from huge pages and the enclave image in it,
 * at the offset the driver asks for.  -kernel is either an EIF, read
 * straight into guest RAM, or a Linux kernel that is wrapped with -initrd
 * and -append into an EIF for the target's architecture, written straight
 * into guest RAM.  The image's measurements (PCR0/1/2) are published as
 * machine properties, with the enclave's CID once it runs.
 *
 * The machine hosts the nitro vsock bus (at /machine/nitro-vsock).
 * Unless -nodefaults, it adds the heartbeat device and, in debug mode with
 * a serial chardev, the console device.
 *
 * For libvirt: the machine requires the nitro accelerator (it replaces
 * libvirt's generic -accel), accepts acpi=on|off, and on x86 answers the
 * vCPU query that libvirt makes after start (nitro-vcpus).
 *
 * Loading a big image is bound by memory: it is read into RAM on several
 * cores, or built there with another thread faulting in the huge pages
 * ahead of the writer (machine-ram.c).
 *
 * SHA-384 is slow next to reading a file: measuring the image would take
 * most of the launch time of a big enclave.  A thread measures it from
 * the input files instead, on another core, while the enclave starts
 * (an EIF whose CRC changed meanwhile is an error); reading a PCR waits
 * for it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-common.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/target-info.h"
#include "qemu/thread.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "hw/core/eif.h"
#include "hw/nitro/machine.h"
#include "hw/nitro/vsock-bus.h"
#include "hw/qdev-properties.h"
#include "system/reset.h"
#include "system/system.h"
#include "hw/arm/machines-qom.h"
#include "system/memory.h"
#include "system/nitro-accel.h"
#include "machine-ram.h"
#include "trace.h"

#define NITRO_DEFAULT_HUGEPAGE_SIZE (2 * MiB)

struct NitroMachineState {
    MachineState parent_obj;

    uint64_t hugepage_size;
    OnOffAuto acpi;
    NitroVsockBridge *vsock;

    /* The loaded image, and the measurement thread's inputs */
    EifInfo info;
    bool is_eif;
    QemuThread measure_thread;
    bool measuring;
    /* The measurement thread's results, valid once it is joined */
    Error *measure_err;
    char pcr[EIF_NR_PCRS][EIF_PCR_HEX_LEN + 1];
};

static bool nitro_machine_check_accel(Error **errp)
{
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
    if (ms->cpu_type && !g_str_has_prefix(ms->cpu_type, "host-")) {
        g_autofree char *model = cpu_model_from_type(ms->cpu_type);

        error_setg(errp, "the vCPUs of an enclave are host cores, not '%s'",
                   model);
        error_append_hint(errp, "Leave -cpu out, or use -cpu host.\n");
        return false;
    }
    return true;
}

static EifArch nitro_machine_arch(void)
{
    return target_aarch64() ? EIF_ARCH_AARCH64 : EIF_ARCH_X86_64;
}

/* The command line of a direct kernel boot */
static const char *nitro_machine_cmdline(MachineState *ms)
{
    return ms->kernel_cmdline && *ms->kernel_cmdline ?
           ms->kernel_cmdline : eif_default_cmdline(nitro_machine_arch());
}

static bool nitro_machine_check_arch(const EifInfo *info, Error **errp)
{
    if (info->arch != nitro_machine_arch()) {
        error_setg(errp, "the enclave image is for %s, not %s",
                   eif_arch_name(info->arch),
                   eif_arch_name(nitro_machine_arch()));
        error_append_hint(errp, "Run it with qemu-system-%s.\n",
                          eif_arch_name(info->arch));
        return false;
    }
    return true;
}

/* Read the EIF @fd into @dst, then validate it there. */
static bool nitro_machine_load_eif(MachineState *ms, int fd, void *dst,
                                   uint64_t capacity, EifInfo *info,
                                   Error **errp)
{
    uint32_t crc;
    off_t size;

    if (ms->initrd_filename || (ms->kernel_cmdline && *ms->kernel_cmdline)) {
        error_setg(errp, "-initrd and -append cannot be used with an EIF "
                   "-kernel");
        error_append_hint(errp, "The EIF carries its ramdisks and command "
                          "line; -initrd and -append are for a Linux "
                          "kernel image.\n");
        return false;
    }
    size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        error_setg_errno(errp, errno, "%s: cannot find its size",
                         ms->kernel_filename);
        return false;
    }
    if (size > capacity) {
        error_setg(errp, "%s: image of %" PRId64 " bytes does not fit in "
                   "%" PRIu64 " bytes", ms->kernel_filename, (int64_t)size,
                   capacity);
        error_append_hint(errp, "Give the enclave more memory with -m: the "
                          "image starts %" PRIu64 " MiB into RAM.\n",
                          (ms->ram_size - capacity) / MiB);
        return false;
    }
    if (!nitro_ram_load_file(dst, fd, size, EIF_HEADER_SIZE, &crc, errp) ||
        !eif_validate_crc(dst, size, crc, info, errp)) {
        error_prepend(errp, "%s: ", ms->kernel_filename);
        return false;
    }
    return nitro_machine_check_arch(info, errp);
}

/* Wrap the kernel, -initrd and -append into an EIF at @dst. */
static bool nitro_machine_build_eif(MachineState *ms, void *dst,
                                    uint64_t capacity, EifInfo *info,
                                    Error **errp)
{
    g_auto(GStrv) initrds = NULL;
    EifBuildParams p = {
        .arch = nitro_machine_arch(),
        .kernel = ms->kernel_filename,
        .cmdline = nitro_machine_cmdline(ms),
    };
    NitroRamPopulate pop;
    uint64_t want;
    int64_t size;

    if (!ms->initrd_filename || !*ms->initrd_filename) {
        error_setg(errp, "%s is not an EIF, and a Linux kernel needs "
                   "-initrd", ms->kernel_filename);
        error_append_hint(errp, "Give the enclave's init ramdisk(s) with "
                          "-initrd file[:file...], or use an EIF made with "
                          "qemu-eif or nitro-cli build-enclave.\n");
        return false;
    }
    initrds = g_strsplit(ms->initrd_filename, ":", -1);
    p.initrds = (const char *const *)initrds;
    p.nr_initrds = g_strv_length(initrds);

    if (!eif_build_size(&p, &want, errp)) {
        return false;
    }
    nitro_ram_populate_start(&pop, dst, MIN(want, capacity));
    size = eif_build(&p, dst, capacity, info, errp);
    nitro_ram_populate_wait(&pop);
    return size >= 0;
}

/* Feed section @s to @m from the file @fd, which holds its data. */
static bool nitro_measure_file(EifMeasure *m, const EifSection *s, int fd,
                               Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(MiB);
    uint64_t pos;

    for (pos = 0; pos < s->size; ) {
        ssize_t n = pread(fd, buf, MIN(MiB, s->size - pos), pos);

        if (n <= 0) {
            error_setg(errp, "changed since it was loaded");
            return false;
        }
        if (!eif_measure_update(m, s, buf, n, errp)) {
            return false;
        }
        pos += n;
    }
    return true;
}

/* Measure the loaded EIF from its file, which must not have changed. */
static bool nitro_machine_measure_eif(NitroMachineState *nms,
                                      EifMeasurements *pcrs, Error **errp)
{
    const char *path = MACHINE(nms)->kernel_filename;
    EifInfo info;
    int fd = qemu_open(path, O_RDONLY, errp);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = eif_read_fd(fd, NULL, NULL, &info, pcrs, errp);
    close(fd);
    if (ok && info.crc32 != nms->info.crc32) {
        error_setg(errp, "changed since it was loaded");
        ok = false;
    }
    if (!ok) {
        error_prepend(errp, "%s: ", path);
    }
    return ok;
}

/*
 * Measure a directly booted kernel from its inputs: the kernel, command
 * line and initrds that the EIF in guest RAM was built from, section by
 * section the same bytes.
 */
static bool nitro_machine_measure_inputs(NitroMachineState *nms,
                                         EifMeasurements *pcrs,
                                         Error **errp)
{
    MachineState *ms = MACHINE(nms);
    g_auto(GStrv) initrds = g_strsplit(ms->initrd_filename, ":", -1);
    g_autoptr(EifMeasure) m = eif_measure_new(errp);
    unsigned i;

    if (!m) {
        return false;
    }
    for (i = 0; i < nms->info.nr_sections; i++) {
        const EifSection *s = &nms->info.sections[i];
        const char *path = ms->kernel_filename;
        int fd;
        bool ok;

        if (s->type == EIF_SECTION_METADATA) {
            continue;
        }
        if (s->type == EIF_SECTION_CMDLINE) {
            if (!eif_measure_update(m, s, nitro_machine_cmdline(ms),
                                    s->size, errp)) {
                return false;
            }
            continue;
        }
        if (s->type == EIF_SECTION_RAMDISK) {
            path = initrds[s->nth];
        }
        fd = qemu_open(path, O_RDONLY, errp);
        if (fd < 0) {
            return false;
        }
        ok = nitro_measure_file(m, s, fd, errp);
        close(fd);
        if (!ok) {
            error_prepend(errp, "%s: ", path);
            return false;
        }
    }
    return eif_measure_finish(m, pcrs, errp);
}

static bool nitro_machine_measure(NitroMachineState *nms, Error **errp)
{
    EifMeasurements pcrs;
    int i;

    if (nms->is_eif ? !nitro_machine_measure_eif(nms, &pcrs, errp) :
        !nitro_machine_measure_inputs(nms, &pcrs, errp)) {
        return false;
    }
    for (i = 0; i < EIF_NR_PCRS; i++) {
        eif_pcr_to_hex(pcrs.pcr[i], nms->pcr[i]);
    }
    trace_nitro_machine_measured(nms->pcr[EIF_PCR0], nms->pcr[EIF_PCR1],
                                 nms->pcr[EIF_PCR2]);
    return true;
}

static void *nitro_machine_measure_thread(void *opaque)
{
    NitroMachineState *nms = opaque;

    nitro_machine_measure(nms, &nms->measure_err);
    return NULL;
}

static bool nitro_machine_load_image(NitroMachineState *nms, Error **errp)
{
    MachineState *ms = MACHINE(nms);
    uint64_t offset = nitro_image_offset();
    uint8_t *ram = memory_region_get_ram_ptr(ms->ram);
    char magic[4];
    int fd;
    bool ok;

    if (!ms->kernel_filename) {
        error_setg(errp, "no enclave image");
        error_append_hint(errp, "Give an EIF with -kernel app.eif, or a "
                          "Linux kernel with -kernel, -initrd and "
                          "-append.\n");
        return false;
    }
    if (offset >= ms->ram_size) {
        error_setg(errp, "the driver wants the image at offset %" PRIu64
                   " of %" PRIu64 " bytes of RAM", offset, ms->ram_size);
        return false;
    }
    fd = qemu_open(ms->kernel_filename, O_RDONLY, errp);
    if (fd < 0) {
        return false;
    }
    nms->is_eif = pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
                  !memcmp(magic, EIF_MAGIC, sizeof(magic));
    if (nms->is_eif) {
        ok = nitro_machine_load_eif(ms, fd, ram + offset,
                                    ms->ram_size - offset, &nms->info, errp);
    } else {
        ok = nitro_machine_build_eif(ms, ram + offset,
                                     ms->ram_size - offset, &nms->info,
                                     errp);
    }
    close(fd);
    if (!ok) {
        return false;
    }
    trace_nitro_machine_image(offset, nms->info.size,
                              eif_arch_name(nms->info.arch));

    qemu_thread_create(&nms->measure_thread, "nitro-measure",
                       nitro_machine_measure_thread, nms,
                       QEMU_THREAD_JOINABLE);
    nms->measuring = true;
    return true;
}

uint64_t nitro_machine_image_size(NitroMachineState *nms)
{
    return nms->info.size;
}

static bool nitro_machine_has_heartbeat(NitroMachineState *nms)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &BUS(&nms->vsock->bus)->children, sibling) {
        if (object_dynamic_cast(OBJECT(kid->child), "nitro-heartbeat")) {
            return true;
        }
    }
    return false;
}

static bool nitro_machine_enclave_started(uint64_t cid, void *opaque,
                                          Error **errp)
{
    NitroMachineState *nms = opaque;

    /* -nodefaults (libvirt always passes it) drops the default one */
    if (!nitro_machine_has_heartbeat(nms)) {
        warn_report("Nitro Enclaves: no nitro-heartbeat device: the enclave "
                    "will panic at boot");
        error_printf("Add -device nitro-heartbeat (with libvirt, in "
                     "<qemu:commandline>).\n");
    }
    return nitro_vsock_bridge_enclave_started(nms->vsock, cid, errp);
}

/* The nitro vsock bus, and its default devices */
static bool nitro_machine_create_vsock(NitroMachineState *nms, Error **errp)
{
    DeviceState *bridge = qdev_new(TYPE_NITRO_VSOCK_BRIDGE);
    BusState *bus;

    object_property_add_child(OBJECT(nms), "nitro-vsock", OBJECT(bridge));
    if (!sysbus_realize_and_unref(SYS_BUS_DEVICE(bridge), errp)) {
        return false;
    }
    nms->vsock = NITRO_VSOCK_BRIDGE(bridge);
    bus = BUS(&nms->vsock->bus);
    nitro_set_started_handler(nitro_machine_enclave_started, nms);

    if (!defaults_enabled()) {
        return true;
    }
    if (!qdev_realize_and_unref(qdev_new("nitro-heartbeat"), bus, errp)) {
        return false;
    }
    if (nitro_debug_mode() && serial_hd(0)) {
        DeviceState *console = qdev_new("nitro-serial-vsock");

        qdev_prop_set_chr(console, "chardev", serial_hd(0));
        if (!qdev_realize_and_unref(console, bus, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * Once an x86 guest runs, libvirt reads the unavailable-features of its
 * first vCPU at /machine/unattached/device[0] (query-cpus-fast lists no
 * vCPU here), and refuses to start the domain without it.  The enclave's
 * vCPUs are whole host cores, so no feature is missing: a placeholder,
 * created before any other device, says so.
 */
#define TYPE_NITRO_VCPUS "nitro-vcpus"

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

static bool nitro_machine_create_vcpus(Error **errp)
{
    DeviceState *dev;

    if (target_aarch64()) {
        return true;
    }
    dev = qdev_new(TYPE_NITRO_VCPUS);
    return qdev_realize_and_unref(dev, NULL, errp);
}

static void nitro_machine_init(MachineState *ms)
{
    NitroMachineState *nms = NITRO_MACHINE(ms);
    Error *err = NULL;

    if (!nitro_machine_create_vcpus(&err) ||
        !nitro_machine_check_accel(&err) ||
        !nitro_machine_check_cpu(ms, &err) ||
        !nitro_ram_check(ms, &err) ||
        !nitro_machine_load_image(nms, &err) ||
        !nitro_machine_create_vsock(nms, &err)) {
        error_report_err(err);
        exit(1);
    }
}

/*
 * The Nitro hypervisor cannot reset an enclave, and its memory is not
 * QEMU's any more: refuse, and say how to restart it.
 */
static void nitro_machine_reset(MachineState *ms, ResetType type)
{
    if (nitro_enclave_cid()) {
        warn_report("Nitro Enclaves: an enclave cannot be reset; system_reset "
                    "is refused.  To restart the enclave, quit QEMU and "
                    "launch it again");
        return;
    }
    qemu_devices_reset(type);
}

static bool nitro_machine_create_memdev(MachineState *ms, const char *path,
                                        Error **errp)
{
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

static void nitro_machine_set_hugepage_size(Object *obj, Visitor *v,
                                            const char *name, void *opaque,
                                            Error **errp)
{
    uint64_t value;

    if (!visit_type_size(v, name, &value, errp)) {
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
    visit_type_OnOffAuto(v, name, &NITRO_MACHINE(obj)->acpi, errp);
}

static void nitro_machine_get_cid(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    uint64_t cid = nitro_enclave_cid();

    visit_type_uint64(v, name, &cid, errp);
}

static char *nitro_machine_get_pcr(NitroMachineState *nms, EifPcr pcr,
                                   Error **errp)
{
    if (!nms->info.size) {
        error_setg(errp, "the enclave image is not loaded yet");
        return NULL;
    }
    if (nms->measuring) {
        qemu_thread_join(&nms->measure_thread);
        nms->measuring = false;
    }
    if (nms->measure_err) {
        error_propagate(errp, error_copy(nms->measure_err));
        return NULL;
    }
    return g_strdup(nms->pcr[pcr]);
}

static char *nitro_machine_get_pcr0(Object *obj, Error **errp)
{
    return nitro_machine_get_pcr(NITRO_MACHINE(obj), EIF_PCR0, errp);
}

static char *nitro_machine_get_pcr1(Object *obj, Error **errp)
{
    return nitro_machine_get_pcr(NITRO_MACHINE(obj), EIF_PCR1, errp);
}

static char *nitro_machine_get_pcr2(Object *obj, Error **errp)
{
    return nitro_machine_get_pcr(NITRO_MACHINE(obj), EIF_PCR2, errp);
}

static void nitro_machine_instance_init(Object *obj)
{
    NITRO_MACHINE(obj)->hugepage_size = NITRO_DEFAULT_HUGEPAGE_SIZE;
}

static void nitro_machine_class_init(ObjectClass *oc, const void *data)
{
    MachineClass *mc = MACHINE_CLASS(oc);

    mc->desc = "AWS Nitro Enclave (needs -accel nitro)";
    mc->init = nitro_machine_init;
    mc->reset = nitro_machine_reset;
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
        "Huge page size of the default guest RAM (2M, the default, or 1G "
        "for large enclaves)");
    object_class_property_add(oc, "acpi", "OnOffAuto",
                              nitro_machine_get_acpi, nitro_machine_set_acpi,
                              NULL, NULL);
    object_class_property_set_description(oc, "acpi",
        "Accepted for management layers such as libvirt, and ignored: the "
        "Nitro hypervisor gives the enclave its firmware tables");
    object_class_property_add(oc, "enclave-cid", "uint64",
                              nitro_machine_get_cid, NULL, NULL, NULL);
    object_class_property_set_description(oc, "enclave-cid",
        "vsock CID of the running enclave (0 before it starts)");
    object_class_property_add_str(oc, "pcr0", nitro_machine_get_pcr0, NULL);
    object_class_property_set_description(oc, "pcr0",
        "PCR0 of the enclave image: kernel, cmdline and ramdisks (hex)");
    object_class_property_add_str(oc, "pcr1", nitro_machine_get_pcr1, NULL);
    object_class_property_set_description(oc, "pcr1",
        "PCR1 of the enclave image: kernel, cmdline, first ramdisk (hex)");
    object_class_property_add_str(oc, "pcr2", nitro_machine_get_pcr2, NULL);
    object_class_property_set_description(oc, "pcr2",
        "PCR2 of the enclave image: the ramdisks after the first (hex)");
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

static const TypeInfo nitro_vcpus_info = {
    .name = TYPE_NITRO_VCPUS,
    .parent = TYPE_DEVICE,
    .class_init = nitro_vcpus_class_init,
};

static void nitro_machine_register_types(void)
{
    type_register_static(&nitro_vcpus_info);
    type_register_static(&nitro_machine_info);
}

type_init(nitro_machine_register_types)
