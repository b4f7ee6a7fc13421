/*
 * AWS Nitro Enclaves: the Nitro hypervisor's PCI device (nitro-enclaves-pci)
 *
 * The device that the unmodified Linux nitro_enclaves driver drives in an
 * EC2 parent instance (PCI 1d0f:e4c1): registers in BAR 3, MSI-X with two
 * vectors (0: a command reply is ready, 1: an enclave changed state) in
 * BAR 0, and the command protocol of slots (docs/system/nitro-pci.rst).
 * With it, a QEMU guest plays the parent instance: the real driver
 * creates /dev/nitro_enclaves and enclave launchers run unchanged.
 *
 * On ENCLAVE_START the enclave's memory is the concatenation of the
 * guest-physical ranges of SLOT_ADD_MEM, in their order; the image sits
 * 8 MiB into it.  The device reads the image out of the parent's RAM
 * (bus-master DMA) into $dir/enclave-<cid>.eif and boots it in a
 * separate QEMU process, -M nitro-enclave under TCG, with the enclave's
 * memory size, vCPU count and CID, and contrib/vhost-user-vsock as its
 * vsock device (hw/nitro/enclave-launch.c, shared with the simulator's
 * real-boot mode).  With vsock-guests, the enclave's vsock is instead
 * handed to the backend process that serves the parent guest's
 * vhost-user-vsock-pci (CID 3), which connects the two guests (its
 * --guests socket).  The enclave's connections to host ports reach
 * $dir/enclave-<cid>.vsock_<port> on the host, its console is
 * $dir/enclave-<cid>.log; in debug mode it is also served where a
 * launcher in the parent guest finds it on Nitro, vsock CID 0 port
 * 10000 + CID: with console-gateway=PATH (the --uds-path of the parent's
 * vsock backend, where the parent's connections to host ports land), at
 * PATH_<port> (console-server.c).  When that process ends, or the enclave's
 * kernel panics (which on Nitro ends the enclave), the slot is stopped
 * and vector 1 raised; ENCLAVE_STOP ends it.  Children are watched from
 * the main loop and never waited for.
 *
 * What a hypervisor decides is a property: the number of slots, the
 * limit of ranges per slot (mem-regions) and the first CID given when
 * the driver asks for any (cid-base).  A bad request gets a negative
 * errno in the reply's rc (which the driver passes to user space) and a
 * trace event; ENCLAVE_STOP and SLOT_FREE always succeed, as the driver's
 * release path requires.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qemu/cutils.h"
#include "qemu/main-loop.h"
#include "hw/boards.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/nitro/enclave-launch.h"
#include "migration/vmstate.h"
#include "system/address-spaces.h"
#include "system/dma.h"
#include "hw/core/eif.h"
#include <sys/un.h>
#include "console-server.h"
#include "trace.h"

#define TYPE_NITRO_ENCLAVES_PCI "nitro-enclaves-pci"
OBJECT_DECLARE_SIMPLE_TYPE(NitroEnclavesPci, NITRO_ENCLAVES_PCI)

#define NE_PCI_VENDOR_ID        0x1d0f
#define NE_PCI_DEVICE_ID        0xe4c1

#define NE_REGS_BAR             3
#define NE_REGS_SIZE            (4 * KiB)
#define NE_MSIX_BAR             0
#define NE_MSIX_VECTORS         2
#define NE_VEC_REPLY            0
#define NE_VEC_EVENT            1

/* BAR 3 */
#define NE_ENABLE               0x000
#define NE_VERSION              0x002
#define NE_COMMAND              0x004
#define NE_EVTCNT               0x00c
#define NE_SEND_DATA            0x010
#define NE_RECV_DATA            0x100
#define NE_DATA_SIZE            240

#define NE_VERSION_MAX          1

enum {
    NE_CMD_ENCLAVE_START = 1,
    NE_CMD_ENCLAVE_GET_SLOT,
    NE_CMD_ENCLAVE_STOP,
    NE_CMD_SLOT_ALLOC,
    NE_CMD_SLOT_FREE,
    NE_CMD_SLOT_ADD_MEM,
    NE_CMD_SLOT_ADD_VCPU,
    NE_CMD_SLOT_COUNT,
    NE_CMD_NEXT_SLOT,
    NE_CMD_SLOT_INFO,
    NE_CMD_SLOT_ADD_BULK_VCPUS,
};

/* Reply layout */
#define NE_REPLY_RC             0
#define NE_REPLY_SLOT_UID       8
#define NE_REPLY_CID            16
#define NE_REPLY_SLOT_COUNT     24
#define NE_REPLY_MEM_REGIONS    32
#define NE_REPLY_MEM_SIZE       40
#define NE_REPLY_NR_VCPUS       48
#define NE_REPLY_FLAGS          56
#define NE_REPLY_STATE          64

#define NE_STATE_INIT           0
#define NE_STATE_RUNNING        2
#define NE_STATE_STOPPED        0xffff

#define NE_FLAG_DEBUG           1ULL
#define NE_MEM_ALIGN            (2 * MiB)
#define NE_IMAGE_OFFSET         (8 * MiB)
#define NE_CID_MIN              4
/* the vsock port of a debug enclave's console, at CID 0 */
#define NE_CONSOLE_PORT(cid)    (10000 + (cid))
#define NE_PANIC_LINE           "Kernel panic - not syncing"

typedef struct NePciRange {
    uint64_t paddr;
    uint64_t size;
} NePciRange;

/* A child process of an enclave, watched from the main loop */
typedef struct NePciChild {
    NitroEnclavesPci *dev;      /* NULL once the device is gone */
    uint64_t slot_uid;
    bool is_qemu;
    GPid pid;
} NePciChild;

typedef struct NePciSlot {
    uint64_t uid;
    uint64_t cid;
    uint64_t flags;
    uint16_t state;
    GArray *ranges;             /* NePciRange, in SLOT_ADD_MEM order */
    GArray *vcpus;              /* uint32_t */
    uint64_t bulk_vcpus;
    uint64_t mem_size;
    NePciChild *qemu;
    NePciChild *backend;
    char *base;                 /* $dir/enclave-<cid> */
    /* the machine's ttyS0, copied to $dir/enclave-<cid>.log */
    NitroEnclavesPci *dev;
    int console;
    int log;
    NitroConsoleServer *served;     /* and to console-gateway's socket */
    char line[256];
    size_t line_len;
} NePciSlot;

struct NitroEnclavesPci {
    PCIDevice parent_obj;

    MemoryRegion regs;
    uint8_t enable;
    uint16_t version;
    uint16_t replies;
    uint16_t events;
    uint8_t send[NE_DATA_SIZE];
    uint8_t recv[NE_DATA_SIZE];
    NePciSlot **slots;
    uint64_t next_uid;
    GList *children;            /* NePciChild still running */
    char *run_dir;              /* dir, or a temporary one made at start */

    /* Properties: what the hypervisor decides */
    uint32_t nr_slots;
    uint64_t mem_regions;
    uint32_t cid_base;
    char *dir;
    char *qemu;
    char *backend;
    char *vsock_guests;
    char *console_gateway;
};

static const char *const ne_pci_cmd_names[] = {
    [NE_CMD_ENCLAVE_START] = "ENCLAVE_START",
    [NE_CMD_ENCLAVE_GET_SLOT] = "ENCLAVE_GET_SLOT",
    [NE_CMD_ENCLAVE_STOP] = "ENCLAVE_STOP",
    [NE_CMD_SLOT_ALLOC] = "SLOT_ALLOC",
    [NE_CMD_SLOT_FREE] = "SLOT_FREE",
    [NE_CMD_SLOT_ADD_MEM] = "SLOT_ADD_MEM",
    [NE_CMD_SLOT_ADD_VCPU] = "SLOT_ADD_VCPU",
    [NE_CMD_SLOT_COUNT] = "SLOT_COUNT",
    [NE_CMD_NEXT_SLOT] = "NEXT_SLOT",
    [NE_CMD_SLOT_INFO] = "SLOT_INFO",
    [NE_CMD_SLOT_ADD_BULK_VCPUS] = "SLOT_ADD_BULK_VCPUS",
};

static const char *ne_pci_cmd_name(uint32_t cmd)
{
    if (cmd < ARRAY_SIZE(ne_pci_cmd_names) && ne_pci_cmd_names[cmd]) {
        return ne_pci_cmd_names[cmd];
    }
    return "unknown";
}

/* A bad request: its rc, and why in a trace event */
static int ne_pci_bad(uint32_t cmd, int rc, const char *why)
{
    trace_ne_pci_bad_request(ne_pci_cmd_name(cmd), rc, why);
    return rc;
}

static uint64_t ne_pci_req64(NitroEnclavesPci *s, unsigned off)
{
    return ldq_le_p(s->send + off);
}

static NePciSlot *ne_pci_slot(NitroEnclavesPci *s, uint64_t uid)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        if (s->slots[i] && s->slots[i]->uid == uid) {
            return s->slots[i];
        }
    }
    return NULL;
}

static unsigned ne_pci_slot_count(NitroEnclavesPci *s)
{
    unsigned n = 0;

    for (unsigned i = 0; i < s->nr_slots; i++) {
        n += !!s->slots[i];
    }
    return n;
}

static void ne_pci_event(NitroEnclavesPci *s)
{
    s->events++;
    msix_notify(PCI_DEVICE(s), NE_VEC_EVENT);
}

/* ---- the enclave's processes ---- */

static void ne_pci_child_end(NePciChild **pc)
{
    if (*pc) {
        kill((*pc)->pid, SIGTERM);
        (*pc)->slot_uid = 0;
        *pc = NULL;
    }
}

/* Files of a stopped enclave; its console log stays */
static void ne_pci_slot_files_remove(NePciSlot *slot)
{
    if (slot->base) {
        g_autofree char *eif = g_strconcat(slot->base, ".eif", NULL);
        g_autofree char *vhost = g_strconcat(slot->base, ".vhost", NULL);

        unlink(eif);
        unlink(vhost);
        g_clear_pointer(&slot->base, g_free);
    }
}

static void ne_pci_console_copy(NePciSlot *slot, const char *buf, size_t n)
{
    if (qemu_write_full(slot->log, buf, n) != n) {
        trace_ne_pci_boot_failed(slot->uid, "cannot write the console log");
    }
    if (slot->served) {
        nitro_console_server_write(slot->served, buf, n);
    }
}

/*
 * The console ends: what the enclave wrote last (up to a pipe's worth)
 * is copied, not lost
 */
static void ne_pci_console_close(NePciSlot *slot)
{
    char buf[4096];
    ssize_t n;

    if (slot->console >= 0) {
        qemu_set_fd_handler(slot->console, NULL, NULL, NULL);
        for (int i = 0; i < 16 &&
             (n = read(slot->console, buf, sizeof(buf))) > 0; i++) {
            ne_pci_console_copy(slot, buf, n);
        }
        close(slot->console);
        slot->console = -1;
    }
    if (slot->served) {
        nitro_console_server_end(slot->served);
        slot->served = NULL;
    }
    if (slot->log >= 0) {
        close(slot->log);
        slot->log = -1;
    }
}

static void ne_pci_slot_stop(NePciSlot *slot)
{
    ne_pci_console_close(slot);
    ne_pci_child_end(&slot->qemu);
    ne_pci_child_end(&slot->backend);
    ne_pci_slot_files_remove(slot);
    if (slot->state == NE_STATE_RUNNING) {
        slot->state = NE_STATE_STOPPED;
    }
}

static void ne_pci_child_exited(GPid pid, gint status, gpointer opaque)
{
    NePciChild *c = opaque;
    NitroEnclavesPci *s = c->dev;

    g_spawn_close_pid(pid);
    if (s) {
        NePciSlot *slot = c->slot_uid ? ne_pci_slot(s, c->slot_uid) : NULL;

        s->children = g_list_remove(s->children, c);
        if (slot && c->is_qemu) {
            trace_ne_pci_enclave_exited(slot->uid, slot->cid, status);
            slot->qemu = NULL;
            if (slot->state == NE_STATE_RUNNING) {
                ne_pci_slot_stop(slot);
                ne_pci_event(s);
            }
        } else if (slot) {
            /* the backend ends when QEMU disconnects: QEMU tells why */
            slot->backend = NULL;
        }
    }
    g_free(c);
}

/*
 * The enclave's console: into its log; a kernel panic stops the enclave
 * (on Nitro its reboot would; the panicked kernel would wait panic=
 * seconds first)
 */
static void ne_pci_console_read(void *opaque)
{
    NePciSlot *slot = opaque;
    char buf[4096];
    ssize_t n = read(slot->console, buf, sizeof(buf));

    if (n < 0 && errno == EAGAIN) {
        return;
    }
    if (n <= 0) {
        /* QEMU is exiting: its child watch says how */
        ne_pci_console_close(slot);
        return;
    }
    ne_pci_console_copy(slot, buf, n);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n' && slot->line_len < sizeof(slot->line) - 1) {
            slot->line[slot->line_len++] = buf[i];
            continue;
        }
        slot->line[slot->line_len] = 0;
        slot->line_len = 0;
        if (strstr(slot->line, NE_PANIC_LINE) &&
            slot->state == NE_STATE_RUNNING) {
            trace_ne_pci_enclave_panicked(slot->uid, slot->cid);
            ne_pci_slot_stop(slot);
            ne_pci_event(slot->dev);
            return;
        }
    }
}

static NePciChild *ne_pci_spawn(NitroEnclavesPci *s, NePciSlot *slot,
                                bool is_qemu, const char *const argv[],
                                char **env, int fd3, int out, int err)
{
    pid_t pid = nitro_enclave_spawn(argv, env, fd3, out, err);
    NePciChild *c;

    if (pid < 0) {
        return NULL;
    }
    c = g_new0(NePciChild, 1);
    c->dev = s;
    c->slot_uid = slot->uid;
    c->is_qemu = is_qemu;
    c->pid = pid;
    s->children = g_list_prepend(s->children, c);
    g_child_watch_add(pid, ne_pci_child_exited, c);
    return c;
}

/* Copy @len bytes at @offset of the enclave's memory to @fd */
static int ne_pci_copy_out(NitroEnclavesPci *s, NePciSlot *slot,
                           uint64_t offset, uint64_t len, int fd)
{
    g_autofree uint8_t *buf = g_malloc(MiB);

    for (unsigned i = 0; i < slot->ranges->len && len; i++) {
        NePciRange *r = &g_array_index(slot->ranges, NePciRange, i);
        uint64_t pos, n;

        if (offset >= r->size) {
            offset -= r->size;
            continue;
        }
        pos = r->paddr + offset;
        n = MIN(r->size - offset, len);
        offset = 0;
        len -= n;
        while (n) {
            uint64_t chunk = MIN(n, MiB);

            if (pci_dma_read(PCI_DEVICE(s), pos, buf, chunk) != MEMTX_OK) {
                return -EFAULT;
            }
            if (qemu_write_full(fd, buf, chunk) != chunk) {
                return -errno;
            }
            pos += chunk;
            n -= chunk;
        }
    }
    return len ? -EFAULT : 0;
}

/*
 * The size of the image at 8 MiB into the enclave's memory, from its
 * header (the booting machine validates the rest), or a negative errno
 */
static int64_t ne_pci_image_size(NitroEnclavesPci *s, NePciSlot *slot)
{
    EifHeader h = { 0 };
    uint64_t end = sizeof(h), off = NE_IMAGE_OFFSET;

    for (unsigned i = 0; i < slot->ranges->len; i++) {
        NePciRange *r = &g_array_index(slot->ranges, NePciRange, i);

        if (off < r->size) {
            if (r->size - off < sizeof(h) ||
                pci_dma_read(PCI_DEVICE(s), r->paddr + off, &h,
                             sizeof(h)) != MEMTX_OK) {
                return -ENOEXEC;
            }
            break;
        }
        off -= r->size;
        if (i == slot->ranges->len - 1) {
            return -ENOEXEC;
        }
    }
    if (memcmp(h.magic, EIF_MAGIC, 4) ||
        be16_to_cpu(h.section_cnt) > EIF_MAX_SECTIONS ||
        (be16_to_cpu(h.flags) & EIF_FLAG_ARCH_AARCH64)) {
        return -ENOEXEC;
    }
    for (unsigned i = 0; i < be16_to_cpu(h.section_cnt); i++) {
        uint64_t o = be64_to_cpu(h.section_offsets[i]);
        uint64_t n = be64_to_cpu(h.section_sizes[i]);

        if (o > slot->mem_size || n > slot->mem_size) {
            return -ENOEXEC;
        }
        end = MAX(end, o + EIF_SECTION_HEADER_SIZE + n);
    }
    if (end > slot->mem_size - NE_IMAGE_OFFSET) {
        return -ENOEXEC;
    }
    return end;
}

static const char *ne_pci_run_dir(NitroEnclavesPci *s, Error **errp)
{
    if (!s->run_dir) {
        s->run_dir = s->dir ? g_strdup(s->dir) :
                     g_dir_make_tmp("qemu-nitro-pci-XXXXXX", NULL);
        if (!s->run_dir) {
            error_setg_errno(errp, errno, "cannot create a directory");
        }
    }
    return s->run_dir;
}

static char *ne_pci_program(const char *prop, const char *rel,
                            const char *name)
{
    g_autofree char *self = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *path = NULL;

    if (prop) {
        return g_strdup(prop);
    }
    self = g_file_read_link("/proc/self/exe", NULL);
    if (!self) {
        return g_strdup(name);
    }
    if (!rel) {
        return g_steal_pointer(&self);
    }
    dir = g_path_get_dirname(self);
    path = g_build_filename(dir, rel, NULL);
    return access(path, X_OK) ? g_strdup(name) : g_steal_pointer(&path);
}

/*
 * Give the enclave's listening vhost-user socket @lsock to the backend
 * of the parent guest (vsock-guests), which serves the enclave as CID
 * @slot->cid with the gateway @gateway: 0 or a negative errno.  A local
 * connect and one short message: nothing waits.
 */
static int ne_pci_vsock_guest(NitroEnclavesPci *s, NePciSlot *slot,
                              int lsock, const char *gateway)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    g_autofree char *msg = g_strdup_printf("GUEST %" PRIu64 " %s\n",
                                           slot->cid, gateway);
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl = { 0 };
    struct iovec iov = { .iov_base = msg, .iov_len = strlen(msg) };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    int fd, rc;

    if (strlen(s->vsock_guests) >= sizeof(sun.sun_path)) {
        return -ENAMETOOLONG;
    }
    pstrcpy(sun.sun_path, sizeof(sun.sun_path), s->vsock_guests);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &lsock, sizeof(int));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        rc = -errno;
    } else {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

        rc = n < 0 ? -errno : n != iov.iov_len ? -EIO : 0;
    }
    close(fd);
    return rc;
}

/* Boot the enclave of @slot: 0 or a negative errno */
static int ne_pci_boot(NitroEnclavesPci *s, NePciSlot *slot)
{
    g_autofree char *qemu = ne_pci_program(s->qemu, NULL,
                                           "qemu-system-x86_64");
    g_autofree char *backend =
        ne_pci_program(s->backend, "contrib/vhost-user-vsock/vhost-user-vsock",
                       "vhost-user-vsock");
    g_autofree char *eif = NULL, *vhost = NULL, *gateway = NULL;
    g_autofree char *log = NULL;
    g_auto(GStrv) env = g_environ_unsetenv(g_get_environ(), "LD_PRELOAD");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    NitroEnclaveLaunch l = { 0 };
    Error *err = NULL;
    const char *dir = ne_pci_run_dir(s, &err);
    int64_t size = ne_pci_image_size(s, slot);
    int fd = -1, lsock = -1, logfd = -1, con[2] = { -1, -1 }, rc;

    if (!dir) {
        trace_ne_pci_boot_failed(slot->uid, error_get_pretty(err));
        error_free(err);
        return -EIO;
    }
    if (size < 0) {
        return ne_pci_bad(NE_CMD_ENCLAVE_START, size,
                          "no x86_64 enclave image at 8 MiB");
    }
    slot->base = g_strdup_printf("%s/enclave-%" PRIu64, dir, slot->cid);
    eif = g_strconcat(slot->base, ".eif", NULL);
    vhost = g_strconcat(slot->base, ".vhost", NULL);
    gateway = g_strconcat(slot->base, ".vsock", NULL);
    log = g_strconcat(slot->base, ".log", NULL);
    if (strlen(gateway) + 8 >= sizeof(sun.sun_path)) {
        rc = ne_pci_bad(NE_CMD_ENCLAVE_START, -ENAMETOOLONG,
                        "dir too long for the enclave's sockets");
        goto out;
    }

    fd = open(eif, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    rc = fd < 0 ? -errno : ne_pci_copy_out(s, slot, NE_IMAGE_OFFSET, size,
                                           fd);
    if (rc) {
        trace_ne_pci_boot_failed(slot->uid, "cannot write the image");
        goto out;
    }
    unlink(vhost);
    pstrcpy(sun.sun_path, sizeof(sun.sun_path), vhost);
    lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(lsock, 1) < 0) {
        rc = -errno;
        trace_ne_pci_boot_failed(slot->uid, "cannot listen for the backend");
        goto out;
    }
    logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0 || !g_unix_open_pipe(con, FD_CLOEXEC, NULL)) {
        rc = -errno;
        trace_ne_pci_boot_failed(slot->uid, "cannot create the console log");
        goto out;
    }
    l = (NitroEnclaveLaunch) {
        .qemu = qemu, .backend = backend, .eif = eif, .vhost = vhost,
        .gateway = gateway, .cid = slot->cid, .mem_mib = slot->mem_size / MiB,
        .vcpus = slot->vcpus->len + slot->bulk_vcpus,
        .debug = slot->flags & NE_FLAG_DEBUG, .instance = getpid(),
        .slot = slot->uid,
    };
    if (!nitro_enclave_launch_argv(&l)) {
        rc = ne_pci_bad(NE_CMD_ENCLAVE_START, -ENAMETOOLONG,
                        "paths too long for the command line");
        goto out;
    }
    if (s->vsock_guests) {
        rc = ne_pci_vsock_guest(s, slot, lsock, gateway);
        if (rc) {
            trace_ne_pci_boot_failed(slot->uid, "the vsock-guests backend "
                                     "does not answer");
            goto out;
        }
    } else {
        slot->backend = ne_pci_spawn(s, slot, false, l.backend_argv, env,
                                     lsock, -1, logfd);
    }
    slot->qemu = slot->backend || s->vsock_guests ?
        ne_pci_spawn(s, slot, true, l.qemu_argv, env, -1, con[1], logfd) :
        NULL;
    if (!slot->qemu) {
        rc = -errno;
        trace_ne_pci_boot_failed(slot->uid, "fork failed");
        goto out;
    }
    trace_ne_pci_enclave_started(slot->uid, slot->cid, slot->qemu->pid, eif);
    if ((slot->flags & NE_FLAG_DEBUG) && s->console_gateway) {
        g_autofree char *path = g_strdup_printf(
            "%s_%" PRIu64, s->console_gateway, NE_CONSOLE_PORT(slot->cid));

        /* the enclave runs without it, as without a console client */
        slot->served = nitro_console_server_new(path, &err);
        if (!slot->served) {
            trace_ne_pci_boot_failed(slot->uid, error_get_pretty(err));
            g_clear_pointer(&err, error_free);
        }
    }
    fcntl(con[0], F_SETFL, fcntl(con[0], F_GETFL) | O_NONBLOCK);
    slot->console = con[0];
    slot->log = logfd;
    slot->line_len = 0;
    con[0] = logfd = -1;
    qemu_set_fd_handler(slot->console, ne_pci_console_read, NULL, slot);
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (lsock >= 0) {
        close(lsock);
    }
    if (logfd >= 0) {
        close(logfd);
    }
    for (int i = 0; i < 2; i++) {
        if (con[i] >= 0) {
            close(con[i]);
        }
    }
    if (rc) {
        ne_pci_slot_stop(slot);
    }
    return rc;
}

/* ---- commands ---- */

static void ne_pci_slot_info(NitroEnclavesPci *s, NePciSlot *slot)
{
    stq_le_p(s->recv + NE_REPLY_SLOT_UID, slot->uid);
    stq_le_p(s->recv + NE_REPLY_CID, slot->cid);
    stq_le_p(s->recv + NE_REPLY_MEM_REGIONS, slot->ranges->len);
    stq_le_p(s->recv + NE_REPLY_MEM_SIZE, slot->mem_size);
    stq_le_p(s->recv + NE_REPLY_NR_VCPUS,
             slot->vcpus->len + slot->bulk_vcpus);
    stq_le_p(s->recv + NE_REPLY_FLAGS, slot->flags);
    stw_le_p(s->recv + NE_REPLY_STATE, slot->state);
}

static bool ne_pci_cid_used(NitroEnclavesPci *s, uint64_t cid)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        if (s->slots[i] && s->slots[i]->state == NE_STATE_RUNNING &&
            s->slots[i]->cid == cid) {
            return true;
        }
    }
    return false;
}

static int ne_pci_enclave_start(NitroEnclavesPci *s, NePciSlot *slot)
{
    uint64_t cid = ne_pci_req64(s, 8);
    uint64_t flags = ne_pci_req64(s, 16);
    const uint32_t cmd = NE_CMD_ENCLAVE_START;
    int rc;

    if (slot->state != NE_STATE_INIT) {
        return ne_pci_bad(cmd, -EBUSY, "the slot is not in init state");
    }
    if (!slot->ranges->len) {
        return ne_pci_bad(cmd, -EINVAL, "no memory added");
    }
    if (!slot->vcpus->len && !slot->bulk_vcpus) {
        return ne_pci_bad(cmd, -EINVAL, "no vCPU added");
    }
    if (flags & ~NE_FLAG_DEBUG) {
        return ne_pci_bad(cmd, -EINVAL, "unknown flags");
    }
    if (!cid) {
        for (cid = MAX(s->cid_base, NE_CID_MIN); ne_pci_cid_used(s, cid);
             cid++) {
            continue;
        }
    } else if (cid < NE_CID_MIN || cid >= UINT32_MAX) {
        return ne_pci_bad(cmd, -EINVAL, "invalid CID");
    } else if (ne_pci_cid_used(s, cid)) {
        return ne_pci_bad(cmd, -EADDRINUSE, "CID in use");
    }
    slot->cid = cid;
    slot->flags = flags;
    rc = ne_pci_boot(s, slot);
    if (rc) {
        slot->cid = 0;
        return rc;
    }
    slot->state = NE_STATE_RUNNING;
    ne_pci_slot_info(s, slot);
    return 0;
}

static bool ne_pci_overlaps(NitroEnclavesPci *s, uint64_t paddr,
                            uint64_t size)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        NePciSlot *slot = s->slots[i];

        for (unsigned j = 0; slot && j < slot->ranges->len; j++) {
            NePciRange *r = &g_array_index(slot->ranges, NePciRange, j);

            if (paddr < r->paddr + r->size && r->paddr < paddr + size) {
                return true;
            }
        }
    }
    return false;
}

/* Is [paddr, paddr + size) writable RAM of the parent? */
static bool ne_pci_is_ram(uint64_t paddr, uint64_t size)
{
    MemoryRegionSection sec = memory_region_find(get_system_memory(), paddr,
                                                 size);
    bool ok = sec.mr && memory_region_is_ram(sec.mr) &&
              !memory_region_is_rom(sec.mr) &&
              int128_eq(sec.size, int128_make64(size));

    if (sec.mr) {
        memory_region_unref(sec.mr);
    }
    return ok;
}

static int ne_pci_slot_add_mem(NitroEnclavesPci *s, NePciSlot *slot)
{
    NePciRange r = { ne_pci_req64(s, 8), ne_pci_req64(s, 16) };
    const uint32_t cmd = NE_CMD_SLOT_ADD_MEM;

    if (slot->state != NE_STATE_INIT) {
        return ne_pci_bad(cmd, -EBUSY, "the slot is not in init state");
    }
    if (!r.size || !QEMU_IS_ALIGNED(r.paddr | r.size, NE_MEM_ALIGN) ||
        r.paddr + r.size < r.paddr) {
        return ne_pci_bad(cmd, -EINVAL, "range not 2 MiB aligned");
    }
    if (slot->ranges->len >= s->mem_regions) {
        return ne_pci_bad(cmd, -E2BIG, "too many ranges");
    }
    if (!ne_pci_is_ram(r.paddr, r.size)) {
        return ne_pci_bad(cmd, -EFAULT, "range outside RAM");
    }
    if (ne_pci_overlaps(s, r.paddr, r.size)) {
        return ne_pci_bad(cmd, -EEXIST, "range overlaps a donated range");
    }
    g_array_append_val(slot->ranges, r);
    slot->mem_size += r.size;
    return 0;
}

static bool ne_pci_vcpu_used(NitroEnclavesPci *s, uint32_t id)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        NePciSlot *slot = s->slots[i];

        for (unsigned j = 0; slot && j < slot->vcpus->len; j++) {
            if (g_array_index(slot->vcpus, uint32_t, j) == id) {
                return true;
            }
        }
    }
    return false;
}

static int ne_pci_slot_add_vcpu(NitroEnclavesPci *s, NePciSlot *slot)
{
    uint32_t id = ldl_le_p(s->send + 8);
    const uint32_t cmd = NE_CMD_SLOT_ADD_VCPU;

    if (slot->state != NE_STATE_INIT) {
        return ne_pci_bad(cmd, -EBUSY, "the slot is not in init state");
    }
    if (id >= MACHINE(qdev_get_machine())->smp.max_cpus) {
        return ne_pci_bad(cmd, -EINVAL, "no such CPU in the parent");
    }
    if (ne_pci_vcpu_used(s, id)) {
        return ne_pci_bad(cmd, -EEXIST, "CPU already in a slot");
    }
    g_array_append_val(slot->vcpus, id);
    return 0;
}

static int ne_pci_slot_alloc(NitroEnclavesPci *s)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        if (!s->slots[i]) {
            NePciSlot *slot = g_new0(NePciSlot, 1);

            slot->uid = ++s->next_uid;
            slot->ranges = g_array_new(false, false, sizeof(NePciRange));
            slot->vcpus = g_array_new(false, false, sizeof(uint32_t));
            slot->dev = s;
            slot->console = slot->log = -1;
            s->slots[i] = slot;
            stq_le_p(s->recv + NE_REPLY_SLOT_UID, slot->uid);
            stq_le_p(s->recv + NE_REPLY_MEM_REGIONS, s->mem_regions);
            return 0;
        }
    }
    return ne_pci_bad(NE_CMD_SLOT_ALLOC, -EBUSY, "no free slot");
}

static void ne_pci_slot_free(NitroEnclavesPci *s, NePciSlot *slot)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        if (s->slots[i] == slot) {
            s->slots[i] = NULL;
        }
    }
    ne_pci_slot_stop(slot);
    g_array_free(slot->ranges, true);
    g_array_free(slot->vcpus, true);
    g_free(slot);
}

static int ne_pci_next_slot(NitroEnclavesPci *s, uint64_t after)
{
    NePciSlot *next = NULL;

    for (unsigned i = 0; i < s->nr_slots; i++) {
        NePciSlot *slot = s->slots[i];

        if (slot && slot->uid > after && (!next || slot->uid < next->uid)) {
            next = slot;
        }
    }
    if (!next) {
        return ne_pci_bad(NE_CMD_NEXT_SLOT, -EINVAL, "no next slot");
    }
    ne_pci_slot_info(s, next);
    return 0;
}

static int ne_pci_get_slot(NitroEnclavesPci *s, uint64_t cid)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        NePciSlot *slot = s->slots[i];

        if (slot && slot->state == NE_STATE_RUNNING && slot->cid == cid) {
            ne_pci_slot_info(s, slot);
            return 0;
        }
    }
    return ne_pci_bad(NE_CMD_ENCLAVE_GET_SLOT, -EINVAL,
                      "no enclave has the CID");
}

static int ne_pci_run(NitroEnclavesPci *s, uint32_t cmd)
{
    uint64_t uid = ne_pci_req64(s, 0);
    NePciSlot *slot = NULL;
    uint64_t n;

    switch (cmd) {
    case NE_CMD_SLOT_ALLOC:
        return ne_pci_slot_alloc(s);
    case NE_CMD_SLOT_COUNT:
        stq_le_p(s->recv + NE_REPLY_SLOT_COUNT, ne_pci_slot_count(s));
        return 0;
    case NE_CMD_NEXT_SLOT:
        return ne_pci_next_slot(s, uid);
    case NE_CMD_ENCLAVE_GET_SLOT:
        return ne_pci_get_slot(s, uid);
    case NE_CMD_ENCLAVE_START:
    case NE_CMD_ENCLAVE_STOP:
    case NE_CMD_SLOT_FREE:
    case NE_CMD_SLOT_ADD_MEM:
    case NE_CMD_SLOT_ADD_VCPU:
    case NE_CMD_SLOT_INFO:
    case NE_CMD_SLOT_ADD_BULK_VCPUS:
        slot = ne_pci_slot(s, uid);
        break;
    default:
        return ne_pci_bad(cmd, -EOPNOTSUPP, "unknown command");
    }

    if (!slot) {
        if (cmd == NE_CMD_ENCLAVE_STOP || cmd == NE_CMD_SLOT_FREE) {
            /* nothing to stop or free: done (release must not fail) */
            trace_ne_pci_bad_request(ne_pci_cmd_name(cmd), 0, "no such slot");
            return 0;
        }
        return ne_pci_bad(cmd, -EINVAL, "no such slot");
    }
    switch (cmd) {
    case NE_CMD_ENCLAVE_START:
        return ne_pci_enclave_start(s, slot);
    case NE_CMD_ENCLAVE_STOP:
        ne_pci_slot_stop(slot);
        return 0;
    case NE_CMD_SLOT_FREE:
        ne_pci_slot_free(s, slot);
        return 0;
    case NE_CMD_SLOT_ADD_MEM:
        return ne_pci_slot_add_mem(s, slot);
    case NE_CMD_SLOT_ADD_VCPU:
        return ne_pci_slot_add_vcpu(s, slot);
    case NE_CMD_SLOT_INFO:
        ne_pci_slot_info(s, slot);
        return 0;
    default: /* NE_CMD_SLOT_ADD_BULK_VCPUS */
        n = ne_pci_req64(s, 8);
        if (slot->state != NE_STATE_INIT) {
            return ne_pci_bad(cmd, -EBUSY, "the slot is not in init state");
        }
        if (!n || n > MACHINE(qdev_get_machine())->smp.max_cpus) {
            return ne_pci_bad(cmd, -EINVAL, "invalid vCPU count");
        }
        slot->bulk_vcpus += n;
        return 0;
    }
}

static void ne_pci_command(NitroEnclavesPci *s, uint32_t cmd)
{
    int rc;

    memset(s->recv, 0, sizeof(s->recv));
    rc = ne_pci_run(s, cmd);
    stl_le_p(s->recv + NE_REPLY_RC, rc);
    trace_ne_pci_command(ne_pci_cmd_name(cmd), ne_pci_req64(s, 0), rc);
    s->replies++;
    msix_notify(PCI_DEVICE(s), NE_VEC_REPLY);
}

/* ---- BAR 3 ---- */

static uint64_t ne_pci_read(void *opaque, hwaddr addr, unsigned size)
{
    NitroEnclavesPci *s = opaque;

    if (addr >= NE_SEND_DATA && addr + size <= NE_SEND_DATA + NE_DATA_SIZE) {
        return ldn_le_p(s->send + addr - NE_SEND_DATA, size);
    }
    if (addr >= NE_RECV_DATA && addr + size <= NE_RECV_DATA + NE_DATA_SIZE) {
        return ldn_le_p(s->recv + addr - NE_RECV_DATA, size);
    }
    switch (addr) {
    case NE_ENABLE:
        return s->enable;
    case NE_VERSION:
        return s->version;
    case NE_EVTCNT:
        return s->replies | (uint32_t)s->events << 16;
    }
    trace_ne_pci_bad_access("read", addr, size);
    return 0;
}

static void ne_pci_write(void *opaque, hwaddr addr, uint64_t val,
                         unsigned size)
{
    NitroEnclavesPci *s = opaque;

    if (addr >= NE_SEND_DATA && addr + size <= NE_SEND_DATA + NE_DATA_SIZE) {
        stn_le_p(s->send + addr - NE_SEND_DATA, size, val);
        return;
    }
    switch (addr) {
    case NE_ENABLE:
        s->enable = !!val;
        trace_ne_pci_enable(s->enable);
        return;
    case NE_VERSION:
        /* a version we do not speak reads back as 0 */
        s->version = val == NE_VERSION_MAX ? val : 0;
        return;
    case NE_COMMAND:
        if (size == 4) {
            ne_pci_command(s, val);
            return;
        }
        break;
    }
    trace_ne_pci_bad_access("write", addr, size);
}

static const MemoryRegionOps ne_pci_ops = {
    .read = ne_pci_read,
    .write = ne_pci_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
    .impl.min_access_size = 1,
    .impl.max_access_size = 8,
};

/* ---- device ---- */

static void ne_pci_free_all(NitroEnclavesPci *s)
{
    for (unsigned i = 0; i < s->nr_slots; i++) {
        if (s->slots[i]) {
            ne_pci_slot_free(s, s->slots[i]);
        }
    }
}

static void ne_pci_realize(PCIDevice *pdev, Error **errp)
{
    NitroEnclavesPci *s = NITRO_ENCLAVES_PCI(pdev);

    if (!s->nr_slots) {
        error_setg(errp, "nitro-enclaves-pci: slots must be at least 1");
        return;
    }
    if (s->cid_base < NE_CID_MIN || s->cid_base >= UINT32_MAX) {
        error_setg(errp, "nitro-enclaves-pci: invalid cid-base %u",
                   s->cid_base);
        error_append_hint(errp, "Enclave CIDs are 4 to 4294967294.\n");
        return;
    }
    memory_region_init_io(&s->regs, OBJECT(s), &ne_pci_ops, s,
                          "nitro-enclaves-pci-regs", NE_REGS_SIZE);
    pci_register_bar(pdev, NE_REGS_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    if (msix_init_exclusive_bar(pdev, NE_MSIX_VECTORS, NE_MSIX_BAR, errp)) {
        return;
    }
    msix_vector_use(pdev, NE_VEC_REPLY);
    msix_vector_use(pdev, NE_VEC_EVENT);
    s->slots = g_new0(NePciSlot *, s->nr_slots);
}

static void ne_pci_exit(PCIDevice *pdev)
{
    NitroEnclavesPci *s = NITRO_ENCLAVES_PCI(pdev);

    ne_pci_free_all(s);
    for (GList *l = s->children; l; l = l->next) {
        NePciChild *c = l->data;

        /* the watch frees it */
        c->dev = NULL;
    }
    g_clear_pointer(&s->children, g_list_free);
    g_clear_pointer(&s->slots, g_free);
    msix_unuse_all_vectors(pdev);
    msix_uninit_exclusive_bar(pdev);
    g_clear_pointer(&s->run_dir, g_free);
}

static void ne_pci_reset(DeviceState *dev)
{
    NitroEnclavesPci *s = NITRO_ENCLAVES_PCI(dev);

    ne_pci_free_all(s);
    s->enable = 0;
    s->version = 0;
    s->replies = 0;
    s->events = 0;
    memset(s->send, 0, sizeof(s->send));
    memset(s->recv, 0, sizeof(s->recv));
}

static const Property ne_pci_properties[] = {
    DEFINE_PROP_UINT32("slots", NitroEnclavesPci, nr_slots, 4),
    DEFINE_PROP_UINT64("mem-regions", NitroEnclavesPci, mem_regions, 256),
    DEFINE_PROP_UINT32("cid-base", NitroEnclavesPci, cid_base, 16),
    DEFINE_PROP_STRING("dir", NitroEnclavesPci, dir),
    DEFINE_PROP_STRING("qemu", NitroEnclavesPci, qemu),
    DEFINE_PROP_STRING("vsock-backend", NitroEnclavesPci, backend),
    DEFINE_PROP_STRING("vsock-guests", NitroEnclavesPci, vsock_guests),
    DEFINE_PROP_STRING("console-gateway", NitroEnclavesPci, console_gateway),
};

static const VMStateDescription ne_pci_vmstate = {
    .name = TYPE_NITRO_ENCLAVES_PCI,
    .unmigratable = 1,
};

static void ne_pci_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = ne_pci_realize;
    k->exit = ne_pci_exit;
    k->vendor_id = NE_PCI_VENDOR_ID;
    k->device_id = NE_PCI_DEVICE_ID;
    k->class_id = PCI_CLASS_SYSTEM_OTHER;
    k->revision = 1;
    device_class_set_legacy_reset(dc, ne_pci_reset);
    device_class_set_props(dc, ne_pci_properties);
    dc->vmsd = &ne_pci_vmstate;
    dc->desc = "AWS Nitro Enclaves hypervisor interface (for an emulated "
               "parent instance)";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ne_pci_info = {
    .name = TYPE_NITRO_ENCLAVES_PCI,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(NitroEnclavesPci),
    .class_init = ne_pci_class_init,
    .interfaces = (const InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void ne_pci_register_types(void)
{
    type_register_static(&ne_pci_info);
}

type_init(ne_pci_register_types)
