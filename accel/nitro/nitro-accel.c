/*
 * AWS Nitro Enclaves accelerator (-accel nitro)
 *
 * QEMU does not run the enclave: the Nitro hypervisor does.  The
 * accelerator drives the nitro_enclaves driver of the parent instance and
 * owns the enclave, whose life follows QEMU's run state:
 *
 * - when the accelerator is initialised it opens /dev/nitro_enclaves and
 *   creates the enclave slot;
 * - once the machine is complete (its image loaded, its devices
 *   realized) it donates all guest RAM and adds the -smp vCPUs (the
 *   host CPUs of cpu-ids, or any of the CPU pool): the
 *   enclave is prepared, and QEMU is in "prelaunch";
 * - when the guest first runs (at start-up, or at "cont" after -S, which
 *   is how libvirt starts every domain) it starts the enclave, once the
 *   machine's devices are ready (the heartbeat listens): QEMU's status
 *   is "running" exactly while the enclave runs;
 * - when the enclave stops (the driver reports POLLHUP), fails to boot
 *   (the heartbeat says so, or the enclave stops before its heartbeat)
 *   or is powered down, QEMU terminates it,
 *   copies the rest of its console and shuts down: with a guest shutdown,
 *   a guest panic (exit status 1) or a host shutdown.  When QEMU exits,
 *   closing the enclave fd terminates the enclave.
 *
 * An enclave cannot pause, be reset, be migrated or snapshotted, and its
 * memory is not QEMU's once it runs: those commands fail with a reason.
 * QEMU's vCPU threads are dummies.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/utsname.h>
#include "qapi/error.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/qapi-commands-migration.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/notify.h"
#include "qemu/target-info.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qemu/accel.h"
#include "accel/accel-ops.h"
#include "accel/accel-cpu-ops.h"
#include "accel/dummy-cpus.h"
#include "exec/cpu-common.h"
#include "hw/boards.h"
#include "migration/blocker.h"
#include "system/nitro-accel.h"
#include "system/runstate.h"
#include "system/runstate-action.h"
#include "system/system.h"
#include "nitro-driver.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NitroAccelState, NITRO_ACCEL)

/* How long a failed enclave gets to stop by itself, so its console says why */
#define NITRO_FAIL_GRACE_MS     1000
/* How long QEMU waits for the rest of the console of a stopped enclave */
#define NITRO_DRAIN_MS          2000

typedef enum NitroEnclaveState {
    NITRO_ENCLAVE_CREATED,      /* a slot, nothing donated yet */
    NITRO_ENCLAVE_PREPARED,     /* memory and vCPUs donated, not started */
    NITRO_ENCLAVE_RUNNING,
    NITRO_ENCLAVE_STOPPING,     /* stopped or failed, its console copied */
    NITRO_ENCLAVE_STOPPED,
} NitroEnclaveState;

/* Why the enclave stops, which decides how QEMU ends */
typedef enum NitroStopCause {
    NITRO_STOP_GUEST,           /* it stopped by itself */
    NITRO_STOP_FAILED,          /* it did not boot */
    NITRO_STOP_POWERDOWN,       /* system_powerdown */
} NitroStopCause;

/* How the stop sequence begins */
typedef enum NitroStopHow {
    NITRO_STOP_HAS_STOPPED,     /* POLLHUP: the enclave stopped */
    NITRO_STOP_TERMINATE,       /* terminate it now */
    NITRO_STOP_GRACE,           /* let it stop by itself, for a moment */
} NitroStopHow;

struct NitroAccelState {
    AccelState parent_obj;

    /* Properties */
    bool debug_mode;
    uint64_t requested_cid;     /* 0 for any */
    uint32List *cpu_ids;        /* the host CPUs to ask for, NULL for any */

    int dev_fd;
    int enclave_fd;
    uint64_t slot_uid;
    uint64_t image_offset;
    uint64_t cid;               /* of the enclave, once started */
    uint32_t *cpus;             /* its host CPUs, once prepared */
    unsigned n_cpus;
    NitroEnclaveState state;
    /* QEMU wants the enclave to run, once the machine's devices are ready */
    bool start_when_ready;

    const NitroEnclaveListener *listener;
    void *listener_opaque;

    NitroStopCause stop_cause;
    /* during STOPPING: the enclave stopped (POLLHUP) or was terminated */
    bool gone;
    int64_t stop_deadline_ms;
    QEMUTimer *stop_timer;

    Error *migration_blocker;
    Notifier machine_done;
    Notifier powerdown;
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

uint64_t nitro_enclave_slot_uid(void)
{
    return nitro_state ? nitro_state->slot_uid : 0;
}

const uint32_t *nitro_enclave_cpus(unsigned *n)
{
    *n = nitro_state ? nitro_state->n_cpus : 0;
    return *n ? nitro_state->cpus : NULL;
}

const char *nitro_enclave_state(void)
{
    static const char *const names[] = {
        [NITRO_ENCLAVE_CREATED] = "created",
        [NITRO_ENCLAVE_PREPARED] = "prepared",
        [NITRO_ENCLAVE_RUNNING] = "running",
        [NITRO_ENCLAVE_STOPPING] = "stopping",
        [NITRO_ENCLAVE_STOPPED] = "stopped",
    };

    return nitro_state ? names[nitro_state->state] : "none";
}

bool nitro_debug_mode(void)
{
    return nitro_state && nitro_state->debug_mode;
}

void nitro_enclave_listen(const NitroEnclaveListener *l, void *opaque)
{
    nitro_state->listener = l;
    nitro_state->listener_opaque = opaque;
}

/* What the listener says; without one, there is nothing to wait for */

static bool nitro_listener_prepare(NitroAccelState *s, Error **errp)
{
    return !s->listener || s->listener->prepare(s->listener_opaque, errp);
}

static bool nitro_listener_can_start(NitroAccelState *s, Error **errp)
{
    return !s->listener || s->listener->can_start(s->listener_opaque, errp);
}

static void nitro_listener_started(NitroAccelState *s)
{
    if (s->listener) {
        s->listener->started(s->listener_opaque, s->cid);
    }
}

static void nitro_listener_stopped(NitroAccelState *s)
{
    if (s->listener) {
        s->listener->stopped(s->listener_opaque);
    }
}

static bool nitro_listener_draining(NitroAccelState *s)
{
    return s->listener && s->listener->draining(s->listener_opaque);
}

static bool nitro_listener_booted(NitroAccelState *s)
{
    return !s->listener || s->listener->booted(s->listener_opaque);
}

static bool nitro_check_cid(uint64_t cid, Error **errp)
{
    ERRP_GUARD();

    if (cid != 0 && (cid <= 3 || cid >= UINT32_MAX)) {
        error_setg(errp, "requested-cid=%" PRIu64 " is not a valid enclave "
                   "CID", cid);
        error_append_hint(errp, "Use 0 to let the hypervisor choose, or a "
                          "CID from 4 to 4294967294 (0 is the hypervisor, "
                          "3 the parent instance).\n");
        return false;
    }
    return true;
}

/* Closing the enclave fd terminates the enclave. */
static void nitro_terminate(NitroAccelState *s)
{
    if (s->enclave_fd < 0) {
        return;
    }
    trace_nitro_terminate(s->cid);
    qemu_set_fd_handler(s->enclave_fd, NULL, NULL, NULL);
    close(s->enclave_fd);
    s->enclave_fd = -1;
}

/* The enclave is gone and its console copied: end QEMU as it ended. */
static void nitro_stopped(NitroAccelState *s)
{
    s->state = NITRO_ENCLAVE_STOPPED;
    timer_del(s->stop_timer);
    trace_nitro_stopped(s->cid, s->stop_cause);

    switch (s->stop_cause) {
    case NITRO_STOP_GUEST:
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
        break;
    case NITRO_STOP_POWERDOWN:
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
        break;
    case NITRO_STOP_FAILED:
        /* GUEST_PANICKED, then what -action panic= and -no-shutdown say */
        qemu_system_guest_panicked(NULL);
        if (panic_action == PANIC_ACTION_NONE) {
            /* A guest may run on after its panic; an enclave cannot */
            vm_stop(RUN_STATE_GUEST_PANICKED);
        } else if (panic_action != PANIC_ACTION_PAUSE &&
                   shutdown_action != SHUTDOWN_ACTION_PAUSE) {
            qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_GUEST_PANIC,
                                                   EXIT_FAILURE);
        }
        break;
    }
}

/*
 * The enclave is gone: give the machine time to copy the rest of its
 * console.  The driver keeps a stopped enclave's slot until its fd is
 * closed, and its console with it: a device that had not connected yet
 * still can.
 */
static void nitro_stop_gone(NitroAccelState *s)
{
    if (s->enclave_fd >= 0) {
        qemu_set_fd_handler(s->enclave_fd, NULL, NULL, NULL);
    }
    s->gone = true;
    s->stop_deadline_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                          NITRO_DRAIN_MS;
}

/*
 * The stop sequence, run again by each of its events (POLLHUP, a device
 * drained) and by a timer at its deadlines: a failed enclave first gets
 * a moment to stop by itself (POLLHUP), else it is terminated; then QEMU
 * waits until the devices have copied the rest of its console, and
 * closes the enclave fd.
 */
static void nitro_stop_tick(void *opaque)
{
    NitroAccelState *s = opaque;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (!s->gone && now >= s->stop_deadline_ms) {
        nitro_terminate(s);
        nitro_stop_gone(s);
    }
    if (now < s->stop_deadline_ms &&
        (!s->gone || nitro_listener_draining(s))) {
        timer_mod(s->stop_timer, s->stop_deadline_ms);
        return;
    }
    nitro_terminate(s);
    nitro_stopped(s);
}

void nitro_enclave_device_drained(void)
{
    NitroAccelState *s = nitro_state;

    if (s->state == NITRO_ENCLAVE_STOPPING && s->gone) {
        nitro_stop_tick(s);
    }
}

/*
 * @how: the enclave has stopped (NITRO_STOP_HAS_STOPPED), is to be
 * terminated now (NITRO_STOP_TERMINATE) or gets a moment to stop by
 * itself (NITRO_STOP_GRACE)
 */
static void nitro_stop(NitroAccelState *s, NitroStopCause cause,
                       NitroStopHow how)
{
    s->state = NITRO_ENCLAVE_STOPPING;
    s->stop_cause = cause;
    s->start_when_ready = false;
    nitro_listener_stopped(s);
    switch (how) {
    case NITRO_STOP_TERMINATE:
        nitro_terminate(s);
        /* fall through */
    case NITRO_STOP_HAS_STOPPED:
        nitro_stop_gone(s);
        break;
    case NITRO_STOP_GRACE:
        s->gone = false;
        s->stop_deadline_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                              NITRO_FAIL_GRACE_MS;
        break;
    }
    nitro_stop_tick(s);
}

/* The driver reports POLLHUP: the enclave has stopped. */
static void nitro_enclave_hangup(void *opaque)
{
    NitroAccelState *s = opaque;

    trace_nitro_enclave_stopped(s->cid);
    if (s->state == NITRO_ENCLAVE_STOPPING) {
        /* A failed enclave stopped within its grace period */
        nitro_stop_gone(s);
        nitro_stop_tick(s);
        return;
    }
    if (!nitro_listener_booted(s)) {
        /* nitro-cli's E36: the enclave stopped before its heartbeat */
        error_report("Nitro Enclaves: the enclave with CID %" PRIu64 " did "
                     "not boot: it stopped before its heartbeat", s->cid);
        nitro_stop(s, NITRO_STOP_FAILED, NITRO_STOP_HAS_STOPPED);
        return;
    }
    info_report("Nitro Enclaves: the enclave with CID %" PRIu64 " stopped",
                s->cid);
    nitro_stop(s, NITRO_STOP_GUEST, NITRO_STOP_HAS_STOPPED);
}

void nitro_enclave_boot_failed(const char *why)
{
    NitroAccelState *s = nitro_state;

    error_report("Nitro Enclaves: the enclave with CID %" PRIu64 " did not "
                 "boot: %s", s->cid, why);
    if (s->state == NITRO_ENCLAVE_RUNNING) {
        nitro_stop(s, NITRO_STOP_FAILED, NITRO_STOP_GRACE);
    }
}

/*
 * An enclave has no power button: system_powerdown terminates it.  Once
 * it has stopped (and QEMU stayed, -action panic=pause or -no-shutdown),
 * powering it down ends QEMU.
 */
static void nitro_powerdown(Notifier *n, void *data)
{
    NitroAccelState *s = container_of(n, NitroAccelState, powerdown);

    if (s->state == NITRO_ENCLAVE_STOPPING) {
        return;
    }
    if (s->state == NITRO_ENCLAVE_STOPPED) {
        info_report("Nitro Enclaves: powering down: the enclave has "
                    "stopped already");
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
        return;
    }
    info_report("Nitro Enclaves: powering down: terminating the enclave");
    nitro_stop(s, NITRO_STOP_POWERDOWN, NITRO_STOP_TERMINATE);
}

void nitro_enclave_device_error(Error *err)
{
    error_report_err(err);
    qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                           EXIT_FAILURE);
}

/*
 * One line that says the enclave runs and where, as nitro-cli's
 * run-enclave does; on stderr, so that a -nographic console stays clean,
 * and not once QEMU runs as a daemon.
 */
static void nitro_report_started(NitroAccelState *s)
{
    g_autoptr(GString) cpus = g_string_new(NULL);

    if (is_daemonized()) {
        return;
    }
    for (unsigned i = 0; i < s->n_cpus; i++) {
        g_string_append_printf(cpus, "%s%u", i ? ", " : "", s->cpus[i]);
    }
    info_report("Nitro Enclaves: started the enclave with CID %" PRIu64
                ": %u vCPUs (%s), %" PRIu64 " MiB%s", s->cid, s->n_cpus,
                cpus->str, current_machine->ram_size / MiB,
                s->debug_mode ? ", debug mode" : "");
}

static bool nitro_start(NitroAccelState *s, Error **errp)
{
    uint64_t cid = s->requested_cid;

    if (!nitro_driver_start(s->enclave_fd, s->debug_mode, &cid, errp)) {
        return false;
    }
    s->cid = cid;
    s->state = NITRO_ENCLAVE_RUNNING;
    nitro_report_started(s);
    qemu_set_fd_handler(s->enclave_fd, nitro_enclave_hangup, NULL, s);
    nitro_listener_started(s);
    return true;
}

/*
 * calc-dirty-rate reads guest RAM from a thread, which must end before
 * the RAM is the enclave's (afterwards the command is refused).
 */
static bool nitro_dirty_rate_idle(Error **errp)
{
    g_autoptr(DirtyRateInfo) info = qmp_query_dirty_rate(false, 0, NULL);

    if (info->status == DIRTY_RATE_STATUS_MEASURING) {
        error_setg(errp, "a dirty rate measurement (calc-dirty-rate) is "
                   "reading the enclave's memory");
        error_append_hint(errp, "Start the enclave once query-dirty-rate "
                          "says that it is done.\n");
        return false;
    }
    return true;
}

static bool nitro_try_start(NitroAccelState *s, Error **errp)
{
    ERRP_GUARD();

    switch (s->state) {
    case NITRO_ENCLAVE_CREATED:
        error_setg(errp, "the enclave is not prepared yet");
        return false;
    case NITRO_ENCLAVE_PREPARED:
        return nitro_dirty_rate_idle(errp) &&
               nitro_listener_can_start(s, errp) &&
               nitro_start(s, errp);
    case NITRO_ENCLAVE_RUNNING:
        return true;
    case NITRO_ENCLAVE_STOPPING:
    case NITRO_ENCLAVE_STOPPED:
        error_setg(errp, "the enclave with CID %" PRIu64 " has stopped; it "
                   "cannot run again", s->cid);
        error_append_hint(errp, "Launch it again with a new QEMU.\n");
        return false;
    }
    g_assert_not_reached();
}

/*
 * Without -S, QEMU starts the guest right after the machine is done; if
 * the devices cannot let the enclave start yet (the heartbeat port is
 * held by another launcher), QEMU stays in prelaunch and the enclave
 * starts once they can (nitro_enclave_devices_ready).
 */
static AccelRunAnswer nitro_prepare_run(AccelState *as, bool startup,
                                        Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(as);

    if (startup && s->state == NITRO_ENCLAVE_PREPARED &&
        !nitro_listener_can_start(s, NULL)) {
        s->start_when_ready = true;
        return ACCEL_RUN_LATER;
    }
    return nitro_try_start(s, errp) ? ACCEL_RUN_NOW : ACCEL_RUN_REFUSED;
}

void nitro_enclave_devices_ready(void)
{
    NitroAccelState *s = nitro_state;
    Error *err = NULL;

    if (!s->start_when_ready) {
        return;
    }
    s->start_when_ready = false;
    if (!nitro_try_start(s, &err)) {
        error_report_err(err);
        qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_HOST_ERROR,
                                               EXIT_FAILURE);
        return;
    }
    vm_start();
}

static bool nitro_can_pause(AccelState *as, Error **errp)
{
    ERRP_GUARD();
    NitroAccelState *s = NITRO_ACCEL(as);

    if (s->start_when_ready) {
        error_setg(errp, "the enclave starts as soon as its devices are "
                   "ready (another launcher holds the heartbeat port): it "
                   "cannot be paused");
        error_append_hint(errp, "Start QEMU with -S to choose when the "
                          "enclave starts (cont).\n");
        return false;
    }
    if (s->state == NITRO_ENCLAVE_RUNNING) {
        error_setg(errp, "an enclave cannot be paused");
        error_append_hint(errp, "The Nitro hypervisor runs the enclave "
                          "until it stops or is terminated (quit, or "
                          "system_powerdown).\n");
        return false;
    }
    return true;
}

static bool nitro_can_access_memory(AccelState *as, Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(as);

    if (s->state >= NITRO_ENCLAVE_RUNNING) {
        error_setg(errp, "the memory of an enclave cannot be read: it "
                   "belongs to the Nitro hypervisor since the enclave "
                   "started");
        return false;
    }
    if (s->start_when_ready) {
        error_setg(errp, "the memory of an enclave cannot be read: it "
                   "belongs to the Nitro hypervisor as soon as the enclave "
                   "starts, which it does once its devices are ready");
        error_append_hint(errp, "Start QEMU with -S to read it before "
                          "the enclave starts (cont).\n");
        return false;
    }
    return true;
}

/* The CPUs of cpu-ids, one per vCPU of -smp, into s->cpus */
static bool nitro_take_cpu_ids(NitroAccelState *s, MachineState *ms,
                               Error **errp)
{
    unsigned n = 0;
    uint32List *l;

    for (l = s->cpu_ids; l; l = l->next, n++) {
        if (n < ms->smp.cpus) {
            s->cpus[n] = l->value;
        }
    }
    if (n != ms->smp.cpus) {
        error_setg(errp, "cpu-ids names %u CPUs, but -smp asks for %u vCPUs",
                   n, ms->smp.cpus);
        error_append_hint(errp, "Give -smp %u, or name %u CPUs in "
                          "cpu-ids.\n", n, ms->smp.cpus);
        return false;
    }
    return true;
}

static bool nitro_prepare(NitroAccelState *s, MachineState *ms, Error **errp)
{
    ERRP_GUARD();
    unsigned i;

    if (runstate_check(RUN_STATE_INMIGRATE)) {
        error_setg(errp, "an enclave cannot be migrated: -incoming is not "
                   "supported");
        error_append_hint(errp, "The Nitro hypervisor, not QEMU, holds the "
                          "enclave's memory and vCPUs.\n");
        return false;
    }
    if (!nitro_listener_prepare(s, errp) ||
        !nitro_donate_memory(s->enclave_fd, ms, errp)) {
        return false;
    }
    s->cpus = g_new0(uint32_t, ms->smp.cpus);
    if (s->cpu_ids && !nitro_take_cpu_ids(s, ms, errp)) {
        return false;
    }
    for (i = 0; i < ms->smp.cpus; i++) {
        if (!nitro_driver_add_vcpu(s->enclave_fd, &s->cpus[i], i,
                                   ms->smp.cpus, errp)) {
            return false;
        }
    }
    s->n_cpus = ms->smp.cpus;
    s->state = NITRO_ENCLAVE_PREPARED;
    trace_nitro_prepared(ms->smp.cpus);
    return true;
}

/* The machine is complete (also after -preconfig): prepare the enclave. */
static void nitro_machine_done(Notifier *n, void *data)
{
    NitroAccelState *s = container_of(n, NitroAccelState, machine_done);
    Error *err = NULL;

    if (!nitro_prepare(s, current_machine, &err)) {
        error_report_err(err);
        exit(1);
    }
}

/* An enclave runs on its parent's architecture */
static bool nitro_check_host_arch(Error **errp)
{
    const char *target = target_aarch64() ? "aarch64" : "x86_64";
    struct utsname host;

    if (uname(&host) || !strcmp(host.machine, target)) {
        return true;
    }
    error_setg(errp, "qemu-system-%s cannot launch an enclave on this %s "
               "parent instance", target, host.machine);
    error_append_hint(errp, "A Nitro enclave has the architecture of its "
                      "parent: use qemu-system-%s with an image for %s.\n",
                      host.machine, host.machine);
    return false;
}

static bool nitro_create(NitroAccelState *s, MachineState *ms, Error **errp)
{
    ERRP_GUARD();

    /* The machines made for an enclave say that they need this one */
    if (g_strcmp0(MACHINE_GET_CLASS(ms)->required_accel, "nitro")) {
        error_setg(errp, "the nitro accelerator only runs the nitro machine, "
                   "not '%s'", MACHINE_GET_CLASS(ms)->name);
        error_append_hint(errp, "Use -M nitro.\n");
        return false;
    }
    if (!nitro_check_cid(s->requested_cid, errp) ||
        !nitro_check_host_arch(errp)) {
        return false;
    }
    error_setg(&s->migration_blocker, "an enclave cannot be migrated or "
               "snapshotted: its memory and vCPUs belong to the Nitro "
               "hypervisor");
    if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
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

static void nitro_exit(Notifier *n, void *data)
{
    NitroAccelState *s = container_of(n, NitroAccelState, exit_notifier);

    trace_nitro_exit(s->cid);
    nitro_terminate(s);
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
    s->stop_timer = timer_new_ms(QEMU_CLOCK_REALTIME, nitro_stop_tick, s);
    s->exit_notifier.notify = nitro_exit;
    qemu_add_exit_notifier(&s->exit_notifier);
    s->machine_done.notify = nitro_machine_done;
    qemu_add_machine_init_done_notifier(&s->machine_done);
    s->powerdown.notify = nitro_powerdown;
    qemu_register_powerdown_notifier(&s->powerdown);
    nitro_state = s;
    return 0;
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

    visit_type_uint64(v, name, &s->requested_cid, errp);
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
    s->requested_cid = cid;
}

static void nitro_get_cpu_ids(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(obj);

    visit_type_uint32List(v, name, &s->cpu_ids, errp);
}

static void nitro_set_cpu_ids(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    NitroAccelState *s = NITRO_ACCEL(obj);
    g_autoptr(uint32List) ids = NULL;
    uint32List *l, *m;

    if (!visit_type_uint32List(v, name, &ids, errp)) {
        return;
    }
    for (l = ids; l; l = l->next) {
        if (!l->value) {
            error_setg(errp, "cpu-ids cannot name CPU 0: it is never in "
                       "the CPU pool (the parent keeps CPU 0's core)");
            return;
        }
        for (m = l->next; m; m = m->next) {
            if (m->value == l->value) {
                error_setg(errp, "cpu-ids names CPU %u more than once",
                           l->value);
                return;
            }
        }
    }
    qapi_free_uint32List(s->cpu_ids);
    s->cpu_ids = g_steal_pointer(&ids);
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
    ac->can_pause = nitro_can_pause;
    ac->can_access_memory = nitro_can_access_memory;
    ac->prepare_run = nitro_prepare_run;
    ac->allowed = &nitro_allowed;

    object_class_property_add_bool(oc, "debug-mode", nitro_get_debug_mode,
                                   nitro_set_debug_mode);
    object_class_property_set_description(oc, "debug-mode",
        "Start the enclave in debug mode: its console can be read, and "
        "its attestation documents report all PCRs as zero");
    object_class_property_add(oc, "requested-cid", "uint64", nitro_get_cid,
                              nitro_set_cid, NULL, NULL);
    object_class_property_set_description(oc, "requested-cid",
        "vsock CID to ask for the enclave: 0 (default) lets the hypervisor "
        "choose, otherwise 4 to 4294967294; the machine's enclave-cid says "
        "which CID it has");
    object_class_property_add(oc, "cpu-ids", "uint32List", nitro_get_cpu_ids,
                              nitro_set_cpu_ids, NULL, NULL);
    object_class_property_set_description(oc, "cpu-ids",
        "Host CPUs of the CPU pool to give the enclave, one per vCPU of "
        "-smp, as ranges: cpu-ids=2-3 or cpu-ids=1,,5 (a doubled comma); "
        "by default the driver chooses");
}

static const TypeInfo nitro_accel_type = {
    .name = TYPE_NITRO_ACCEL,
    .parent = TYPE_ACCEL,
    .instance_size = sizeof(NitroAccelState),
    .instance_init = nitro_accel_instance_init,
    .class_init = nitro_accel_class_init,
};

/* The Nitro hypervisor cannot reset an enclave: system_reset is refused */
static bool nitro_cpus_are_resettable(void)
{
    return false;
}

static void nitro_accel_ops_class_init(ObjectClass *oc, const void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    ops->cpus_are_resettable = nitro_cpus_are_resettable;
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
