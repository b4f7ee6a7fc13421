/*
 * AWS Nitro Enclaves: the host-wide registry of enclave QEMUs
 * (nitro-registry)
 *
 * So that tools (qemu-nitro describe-enclaves, console, terminate-enclave)
 * find every enclave QEMU of the host, however it was started (by hand,
 * by qemu-nitro, by libvirt), each one registers itself in a directory
 * named after its enclave ID, as nitro-cli forms it
 * (i-<instance>-enc<slot uid in hex>), under the runtime directory:
 * $QEMU_NITRO_RUNTIME_DIR if set, otherwise /run/qemu-nitro (created by
 * root with mode 1777, like /tmp, so that QEMUs of other users register
 * there too), otherwise, for a user who cannot write there,
 * $XDG_RUNTIME_DIR/qemu-nitro.  The enclave's directory (mode 0700) holds:
 *
 * - info.json: what describe-enclaves shows, with nitro-cli's keys,
 *   rewritten (atomically) when the enclave starts and stops;
 * - qmp.sock: a QMP monitor;
 * - console.sock (debug mode): the enclave's console, which every client
 *   receives from its first byte (the last NITRO_CONSOLE_SERVER_KEEP
 *   bytes), whatever -serial the user gave: the console device
 *   (nitro-serial-vsock) passes what it reads to the registry.
 *
 * QEMU removes the directory when it exits; a directory left by a QEMU
 * that was killed (SIGKILL) is removed by the next reader, or by the next
 * QEMU that gets the same enclave ID.
 *
 * Nothing here blocks QEMU: the console socket is console-server.c's,
 * whose clients are non-blocking sockets.
 * A registry that cannot be created is a warning: the enclave runs, only
 * the tools do not see it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "qemu/option.h"
#include "qemu/config-file.h"
#include "qemu/units.h"
#include "chardev/char.h"
#include "hw/boards.h"
#include "hw/nitro/vsock-bus.h"
#include "monitor/monitor.h"
#include "system/nitro-accel.h"
#include "system/nitro-host.h"
#include "system/system.h"
#include "console-server.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NitroRegistry, NITRO_REGISTRY)

#define NITRO_REGISTRY_ENV "QEMU_NITRO_RUNTIME_DIR"
#define NITRO_REGISTRY_ROOT "/run/qemu-nitro"

struct NitroRegistry {
    NitroVsockDevice parent_obj;

    char *id;                   /* the enclave ID */
    char *dir;                  /* its directory, while registered */
    char *qmp_path;
    char *console_path;
    NitroConsoleServer *console;

    Notifier exit_notifier;
};

/* One registry per QEMU: the enclave's */
static NitroRegistry *nitro_registry;

static const char *const nitro_registry_files[] = {
    "info.json", "qmp.sock", "console.sock",
};

/* The instance ID of the parent, as nitro-cli reads it */
static char *nitro_registry_enclave_id(void)
{
    g_autofree char *tag = nitro_sysfs_read("devices/virtual/dmi/id/"
                                            "board_asset_tag");

    return g_strdup_printf("%s-enc%" PRIx64,
                           tag && *tag ? tag : "i-0000000000000000",
                           nitro_enclave_slot_uid());
}

static bool nitro_registry_mkdir(const char *path, mode_t mode,
                                 Error **errp)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        error_setg_errno(errp, errno, "cannot create %s", path);
        return false;
    }
    return true;
}

/* Where enclave QEMUs register */
static char *nitro_registry_base(Error **errp)
{
    const char *env = g_getenv(NITRO_REGISTRY_ENV);
    const char *xdg = g_getenv("XDG_RUNTIME_DIR");
    g_autofree char *user = NULL;

    if (env && *env) {
        return nitro_registry_mkdir(env, 0700, errp) ? g_strdup(env) : NULL;
    }
    if (geteuid() == 0) {
        if (mkdir(NITRO_REGISTRY_ROOT, 01777) == 0) {
            /* Not the umask's mode: every user's QEMU registers there */
            if (chmod(NITRO_REGISTRY_ROOT, 01777) < 0) {
                error_setg_errno(errp, errno, "cannot set the mode of %s",
                                 NITRO_REGISTRY_ROOT);
                return NULL;
            }
        } else if (errno != EEXIST) {
            error_setg_errno(errp, errno, "cannot create %s",
                             NITRO_REGISTRY_ROOT);
            return NULL;
        }
        return g_strdup(NITRO_REGISTRY_ROOT);
    }
    if (access(NITRO_REGISTRY_ROOT, W_OK | X_OK) == 0) {
        return g_strdup(NITRO_REGISTRY_ROOT);
    }
    if (!xdg || !*xdg) {
        error_setg(errp, "no runtime directory: %s is not writable and "
                   "XDG_RUNTIME_DIR is not set", NITRO_REGISTRY_ROOT);
        error_append_hint(errp, "Create it as root (install -d -m 1777 %s), "
                          "or set " NITRO_REGISTRY_ENV ".\n",
                          NITRO_REGISTRY_ROOT);
        return NULL;
    }
    user = g_build_filename(xdg, "qemu-nitro", NULL);
    return nitro_registry_mkdir(user, 0700, errp) ? g_steal_pointer(&user)
                                                  : NULL;
}

static void nitro_registry_remove_files(const char *dir)
{
    for (int i = 0; i < ARRAY_SIZE(nitro_registry_files); i++) {
        g_autofree char *f = g_build_filename(dir, nitro_registry_files[i],
                                              NULL);

        unlink(f);
    }
    rmdir(dir);
}

/*
 * A directory with our enclave ID exists: left by a killed QEMU (its
 * process is gone), remove it; registered by a live one, keep it.
 */
static bool nitro_registry_reclaim(const char *dir, Error **errp)
{
    g_autofree char *info = g_build_filename(dir, "info.json", NULL);
    g_autofree char *text = NULL;
    g_autoptr(QDict) dict = NULL;
    int64_t pid = 0;

    if (g_file_get_contents(info, &text, NULL, NULL)) {
        dict = qobject_to(QDict, qobject_from_json(text, NULL));
        pid = dict ? qdict_get_try_int(dict, "ProcessID", 0) : 0;
    }
    if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) {
        error_setg(errp, "%s is registered by the running process %" PRId64,
                   dir, pid);
        return false;
    }
    nitro_registry_remove_files(dir);
    return true;
}

static const char *nitro_registry_state(void)
{
    const char *state = nitro_enclave_state();

    /* nitro-cli's words, where it has one */
    if (!strcmp(state, "running")) {
        return "RUNNING";
    } else if (!strcmp(state, "stopping")) {
        return "TERMINATING";
    } else if (!strcmp(state, "stopped")) {
        return "TERMINATED";
    }
    return "PREPARED";
}

/* nitro-cli's default name: the image's file name, without .eif */
static char *nitro_registry_name(void)
{
    const char *kernel = current_machine->kernel_filename;
    g_autofree char *base = NULL;

    if (qemu_name) {
        return g_strdup(qemu_name);
    }
    if (!kernel) {
        return g_strdup("enclave");
    }
    base = g_path_get_basename(kernel);
    if (g_str_has_suffix(base, ".eif") && strlen(base) > 4) {
        base[strlen(base) - 4] = 0;
    }
    return g_steal_pointer(&base);
}

/* describe-enclaves' view of the enclave, with nitro-cli's keys */
static void nitro_registry_write_info(NitroRegistry *reg)
{
    g_autoptr(QDict) info = qdict_new();
    QList *cpus = qlist_new();
    g_autoptr(GString) json = NULL;
    g_autofree char *path = g_build_filename(reg->dir, "info.json", NULL);
    g_autofree char *name = nitro_registry_name();
    g_autoptr(GError) gerr = NULL;
    const uint32_t *ids;
    unsigned n;

    ids = nitro_enclave_cpus(&n);
    for (unsigned i = 0; i < n; i++) {
        qlist_append_int(cpus, ids[i]);
    }
    qdict_put_str(info, "EnclaveName", name);
    qdict_put_str(info, "EnclaveID", reg->id);
    qdict_put_int(info, "ProcessID", getpid());
    qdict_put_int(info, "EnclaveCID", nitro_enclave_cid());
    qdict_put_int(info, "NumberOfCPUs", current_machine->smp.cpus);
    qdict_put(info, "CPUIDs", cpus);
    qdict_put_int(info, "MemoryMiB", current_machine->ram_size / MiB);
    qdict_put_str(info, "State", nitro_registry_state());
    qdict_put_str(info, "Flags", nitro_debug_mode() ? "DEBUG_MODE" : "NONE");
    if (current_machine->kernel_filename) {
        g_autofree char *image =
            g_canonicalize_filename(current_machine->kernel_filename, NULL);

        qdict_put_str(info, "Image", image);
    }
    json = qobject_to_json_pretty(QOBJECT(info), true);
    g_string_append_c(json, '\n');
    /* A temporary file and rename(): readers see the old or the new */
    if (!g_file_set_contents(path, json->str, json->len, &gerr)) {
        warn_report("Nitro Enclaves: cannot update %s: %s", path,
                    gerr->message);
    }
}

void nitro_registry_console_output(const uint8_t *buf, size_t len)
{
    NitroRegistry *reg = nitro_registry;

    if (reg && reg->console) {
        nitro_console_server_write(reg->console, buf, len);
    }
}

static bool nitro_registry_start_qmp(NitroRegistry *reg, Error **errp)
{
    QemuOpts *opts = qemu_opts_create(qemu_find_opts("chardev"),
                                      "nitro-registry-qmp", 1, errp);
    Chardev *chr;

    if (!opts) {
        return false;
    }
    qemu_opt_set(opts, "backend", "socket", &error_abort);
    qemu_opt_set(opts, "path", reg->qmp_path, &error_abort);
    qemu_opt_set(opts, "server", "on", &error_abort);
    qemu_opt_set(opts, "wait", "off", &error_abort);
    chr = qemu_chr_new_from_opts(opts, NULL, errp);
    qemu_opts_del(opts);
    if (!chr) {
        return false;
    }
    monitor_init_qmp(chr, false, errp);
    return !*errp;
}

/* QEMU exits, however it ends: unregister */
static void nitro_registry_exit(Notifier *n, void *data)
{
    NitroRegistry *reg = container_of(n, NitroRegistry, exit_notifier);

    if (reg->console) {
        nitro_console_server_end(reg->console);
        reg->console = NULL;
    }
    if (reg->dir) {
        trace_nitro_registry_removed(reg->dir);
        nitro_registry_remove_files(reg->dir);
    }
}

static bool nitro_registry_create(NitroRegistry *reg, Error **errp)
{
    ERRP_GUARD();
    g_autofree char *base = nitro_registry_base(errp);
    g_autofree char *dir = NULL;

    if (!base) {
        return false;
    }
    reg->id = nitro_registry_enclave_id();
    dir = g_build_filename(base, reg->id, NULL);
    if (mkdir(dir, 0700) < 0) {
        if (errno != EEXIST || !nitro_registry_reclaim(dir, errp)) {
            if (!*errp) {
                error_setg_errno(errp, errno, "cannot create %s", dir);
            }
            return false;
        }
        if (mkdir(dir, 0700) < 0) {
            error_setg_errno(errp, errno, "cannot create %s", dir);
            return false;
        }
    }
    reg->dir = g_steal_pointer(&dir);
    reg->exit_notifier.notify = nitro_registry_exit;
    qemu_add_exit_notifier(&reg->exit_notifier);
    reg->qmp_path = g_build_filename(reg->dir, "qmp.sock", NULL);
    reg->console_path = g_build_filename(reg->dir, "console.sock", NULL);
    if (!nitro_registry_start_qmp(reg, errp)) {
        return false;
    }
    if (nitro_debug_mode()) {
        reg->console = nitro_console_server_new(reg->console_path, errp);
        if (!reg->console) {
            return false;
        }
    }
    nitro_registry_write_info(reg);
    trace_nitro_registry_created(reg->dir);
    return true;
}

static void nitro_registry_enclave_started(NitroVsockDevice *dev,
                                           uint64_t cid)
{
    NitroRegistry *reg = NITRO_REGISTRY(dev);

    if (reg->dir) {
        nitro_registry_write_info(reg);
    }
}

static void nitro_registry_enclave_stopped(NitroVsockDevice *dev)
{
    NitroRegistry *reg = NITRO_REGISTRY(dev);

    if (reg->dir) {
        nitro_registry_write_info(reg);
    }
}

static void nitro_registry_realize(DeviceState *dev, Error **errp)
{
    NitroRegistry *reg = NITRO_REGISTRY(dev);
    Error *err = NULL;

    if (nitro_registry) {
        error_setg(errp, "an enclave QEMU has one nitro-registry");
        return;
    }
    nitro_registry = reg;
    if (!nitro_registry_create(reg, &err)) {
        /* The enclave runs all the same; only the tools do not see it */
        warn_reportf_err(err, "Nitro Enclaves: not registered for "
                         "qemu-nitro: ");
    }
}

static void nitro_registry_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    NitroVsockDeviceClass *vc = NITRO_VSOCK_DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves: registers the enclave for qemu-nitro";
    dc->realize = nitro_registry_realize;
    dc->hotpluggable = false;
    /* The machine creates it, always */
    dc->user_creatable = false;
    vc->enclave_started = nitro_registry_enclave_started;
    vc->enclave_stopped = nitro_registry_enclave_stopped;
}

static const TypeInfo nitro_registry_info = {
    .name = TYPE_NITRO_REGISTRY,
    .parent = TYPE_NITRO_VSOCK_DEVICE,
    .instance_size = sizeof(NitroRegistry),
    .class_init = nitro_registry_class_init,
};

static void nitro_registry_register_types(void)
{
    type_register_static(&nitro_registry_info);
}

type_init(nitro_registry_register_types)
