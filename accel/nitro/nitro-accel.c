/*
 * AWS Nitro Enclaves accelerator (-accel nitro)
 *
 * QEMU does not run the enclave: the Nitro hypervisor does.  The
 * accelerator drives the nitro_enclaves driver of the parent instance:
 * when the machine is set up it opens /dev/nitro_enclaves and creates the
 * enclave slot; once the machine is complete (setup_post) it donates all
 * guest RAM, adds the -smp vCPUs and starts the enclave.  QEMU's vCPU
 * threads are dummies.
 *
 * From then on QEMU watches the enclave fd: when the enclave stops (the
 * driver reports POLLHUP) QEMU shuts down like after a guest power-off.
 * When QEMU exits, closing the fd terminates the enclave.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/notify.h"
#include "qemu/accel.h"
#include "accel/accel-ops.h"
#include "accel/accel-cpu-ops.h"
#include "accel/dummy-cpus.h"
#include "exec/cpu-common.h"
#include "hw/boards.h"
#include "hw/nitro/machine.h"
#include "system/ramblock.h"
#include "system/nitro-accel.h"
#include "system/runstate.h"
#include "system/system.h"
#include "nitro-driver.h"
#include "trace.h"

#define TYPE_NITRO_ACCEL ACCEL_CLASS_NAME("nitro")
OBJECT_DECLARE_SIMPLE_TYPE(NitroAccelState, NITRO_ACCEL)

struct NitroAccelState {
    AccelState parent_obj;

    /* Properties */
    bool debug_mode;
    uint64_t enclave_cid;   /* requested, 0 for any */

    int dev_fd;
    int enclave_fd;
    uint64_t slot_uid;
    uint64_t image_offset;
    uint64_t cid;           /* of the running enclave */

    NitroStartedFunc *started;
    void *started_opaque;
    Notifier exit_notifier;
};

bool nitro_allowed;
static NitroAccelState *nitro_state;

uint64_t nitro_image_offset(void)
{
    return nitro_state->image_offset;
}

uint64_t nitro_enclave_cid(void)
{
    return nitro_state ? nitro_state->cid : 0;
}

void nitro_set_started_handler(NitroStartedFunc *fn, void *opaque)
{
    nitro_state->started = fn;
    nitro_state->started_opaque = opaque;
}

bool nitro_debug_mode(void)
{
    return nitro_state && nitro_state->debug_mode;
}

static bool nitro_check_cid(uint64_t cid, Error **errp)
{
    if (cid != 0 && (cid <= 3 || cid >= UINT32_MAX)) {
        error_setg(errp, "enclave-cid=%" PRIu64 " is not a valid enclave CID",
                   cid);
        error_append_hint(errp, "Use 0 to let the hypervisor choose, or a "
                          "CID from 4 to 4294967294 (0 is the hypervisor, "
                          "3 the parent instance).\n");
        return false;
    }
    return true;
}

static bool nitro_create(NitroAccelState *s, MachineState *ms, Error **errp)
{
    if (!object_dynamic_cast(OBJECT(ms), TYPE_NITRO_MACHINE)) {
        error_setg(errp, "the nitro accelerator only runs the nitro machine, "
                   "not '%s'", MACHINE_GET_CLASS(ms)->name);
        error_append_hint(errp, "Use -M nitro.\n");
        return false;
    }
    if (!nitro_check_cid(s->enclave_cid, errp)) {
        return false;
    }
    s->dev_fd = nitro_driver_open(errp);
    if (s->dev_fd < 0) {
        return false;
    }
    s->enclave_fd = nitro_driver_create_vm(s->dev_fd, &s->slot_uid, errp);
    if (s->enclave_fd < 0) {
        return false;
    }
    return nitro_driver_image_offset(s->enclave_fd, &s->image_offset, errp);
}

/* Closing the enclave fd terminates the enclave. */
static void nitro_exit(Notifier *n, void *data)
{
    NitroAccelState *s = container_of(n, NitroAccelState, exit_notifier);

    trace_nitro_exit(s->cid);
    close(s->enclave_fd);
    close(s->dev_fd);
}

/*
 * A failure here is final: the nitro machine cannot run on another
 * accelerator, so do not let QEMU fall back to the next -accel.
 */
static int nitro_init_machine(AccelState *as, MachineState *ms)
{
    NitroAccelState *s = NITRO_ACCEL(as);
    Error *err = NULL;

    if (!nitro_create(s, ms, &err)) {
        error_report_err(err);
        exit(1);
    }
    s->exit_notifier.notify = nitro_exit;
    qemu_add_exit_notifier(&s->exit_notifier);
    nitro_state = s;
    return 0;
}

typedef struct NitroDonation {
    NitroAccelState *s;
    RAMBlock *first;
    Error **errp;
} NitroDonation;

static int nitro_donate_block(RAMBlock *rb, void *opaque)
{
    NitroDonation *d = opaque;

    if (rb == d->first) {
        return 0;
    }
    return nitro_driver_add_memory(d->s->enclave_fd,
                                   qemu_ram_get_host_addr(rb),
                                   qemu_ram_get_used_length(rb),
                                   d->errp) ? 0 : -1;
}

/*
 * Enclave memory is the concatenation of the donated regions in donation
 * order and the image sits at an offset of it: main RAM goes first.
 */
static bool nitro_donate_memory(NitroAccelState *s, MachineState *ms,
                                Error **errp)
{
    NitroDonation d = { .s = s, .first = ms->ram->ram_block, .errp = errp };

    if (!nitro_driver_add_memory(s->enclave_fd,
                                 qemu_ram_get_host_addr(d.first),
                                 qemu_ram_get_used_length(d.first), errp)) {
        return false;
    }
    return qemu_ram_foreach_block(nitro_donate_block, &d) == 0;
}

/* The driver reports POLLHUP: the enclave has stopped. */
static void nitro_enclave_hangup(void *opaque)
{
    NitroAccelState *s = opaque;

    qemu_set_fd_handler(s->enclave_fd, NULL, NULL, NULL);
    trace_nitro_enclave_stopped(s->cid);
    info_report("Nitro Enclaves: the enclave with CID %" PRIu64 " stopped",
                s->cid);
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
}

static bool nitro_start(NitroAccelState *s, MachineState *ms, Error **errp)
{
    unsigned i;
    uint64_t cid = s->enclave_cid;

    if (!nitro_donate_memory(s, ms, errp)) {
        return false;
    }
    for (i = 0; i < ms->smp.cpus; i++) {
        uint32_t cpu = 0;

        if (!nitro_driver_add_vcpu(s->enclave_fd, &cpu, errp)) {
            return false;
        }
    }
    if (!nitro_driver_start(s->enclave_fd, s->debug_mode, &cid, errp)) {
        return false;
    }
    s->cid = cid;
    qemu_set_fd_handler(s->enclave_fd, nitro_enclave_hangup, NULL, s);
    return !s->started || s->started(cid, s->started_opaque, errp);
}

static void nitro_setup_post(AccelState *as)
{
    Error *err = NULL;

    if (!nitro_start(NITRO_ACCEL(as), current_machine, &err)) {
        error_report_err(err);
        exit(1);
    }
}

static bool nitro_get_debug_mode(Object *obj, Error **errp)
{
    return NITRO_ACCEL(obj)->debug_mode;
}

static void nitro_set_debug_mode(Object *obj, bool value, Error **errp)
{
    NITRO_ACCEL(obj)->debug_mode = value;
}

static void nitro_get_cid(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(obj);

    visit_type_uint64(v, name, &s->enclave_cid, errp);
}

static void nitro_set_cid(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(obj);
    uint64_t cid;

    if (!visit_type_uint64(v, name, &cid, errp) ||
        !nitro_check_cid(cid, errp)) {
        return;
    }
    s->enclave_cid = cid;
}

static void nitro_accel_instance_init(Object *obj)
{
    NitroAccelState *s = NITRO_ACCEL(obj);

    s->dev_fd = -1;
    s->enclave_fd = -1;
}

static void nitro_accel_class_init(ObjectClass *oc, const void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);

    ac->name = "Nitro";
    ac->init_machine = nitro_init_machine;
    ac->setup_post = nitro_setup_post;
    ac->allowed = &nitro_allowed;

    object_class_property_add_bool(oc, "debug-mode", nitro_get_debug_mode,
                                   nitro_set_debug_mode);
    object_class_property_set_description(oc, "debug-mode",
        "Start the enclave in debug mode: its console can be read, and "
        "its attestation documents report all PCRs as zero");
    object_class_property_add(oc, "enclave-cid", "uint64", nitro_get_cid,
                              nitro_set_cid, NULL, NULL);
    object_class_property_set_description(oc, "enclave-cid",
        "vsock CID of the enclave: 0 (default) lets the hypervisor choose, "
        "otherwise 4 to 4294967294");
}

static const TypeInfo nitro_accel_type = {
    .name = TYPE_NITRO_ACCEL,
    .parent = TYPE_ACCEL,
    .instance_size = sizeof(NitroAccelState),
    .instance_init = nitro_accel_instance_init,
    .class_init = nitro_accel_class_init,
};

static void nitro_accel_ops_class_init(ObjectClass *oc, const void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    ops->create_vcpu_thread = dummy_start_vcpu_thread;
    ops->handle_interrupt = generic_handle_interrupt;
}

static const TypeInfo nitro_accel_ops_type = {
    .name = ACCEL_OPS_NAME("nitro"),
    .parent = TYPE_ACCEL_OPS,
    .class_init = nitro_accel_ops_class_init,
    .abstract = true,
};

static void nitro_type_init(void)
{
    type_register_static(&nitro_accel_type);
    type_register_static(&nitro_accel_ops_type);
}

type_init(nitro_type_init);
