/*
 * QTest: the Nitro hypervisor's PCI device (nitro-enclaves-pci)
 *
 * On -M microvm,pcie=on, as the Linux nitro_enclaves driver sees it: its
 * identity, BAR 3, MSI-X, the bring-up handshake, the reply of every
 * command, the bad requests a guest can make (each an error rc, and the
 * device still answers), and the start of an enclave from the donated
 * ranges in SLOT_ADD_MEM order.  For the start, the device's "qemu" is a
 * script that keeps the image it was given and its command line, and
 * exits or waits as the test wants: the device's side of the boot
 * (reading the ranges, the command line, watching the child, vector 1,
 * ENCLAVE_STOP) is tested without booting a kernel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/generic-pcihost.h"
#include "standard-headers/linux/pci_regs.h"
#include <poll.h>
#include <sys/un.h>

/* microvm's PCIe host (include/hw/i386/microvm.h) */
#define MICROVM_ECAM_BASE   0xe0000000ULL
#define MICROVM_MMIO_BASE   0xc0000000ULL
#define MICROVM_MMIO_END    0xe0000000ULL

#define NE_DEVFN            QPCI_DEVFN(4, 0)
#define NE_ENABLE           0x000
#define NE_VERSION          0x002
#define NE_COMMAND          0x004
#define NE_EVTCNT           0x00c
#define NE_SEND_DATA        0x010
#define NE_RECV_DATA        0x100

#define MSI_ADDR(vec)       (0x1000 + (vec) * 16)
#define MSI_DATA            0x4e45

enum {
    START = 1, GET_SLOT, STOP, ALLOC, FREE, ADD_MEM, ADD_VCPU, COUNT,
    NEXT_SLOT, INFO, ADD_BULK,
};

typedef struct Reply {
    int32_t rc;
    uint64_t slot_uid, cid, slot_count, mem_regions, mem_size, nr_vcpus;
    uint64_t flags;
    uint16_t state;
} Reply;

typedef struct Ne {
    QTestState *qts;
    QGenericPCIBus bus;
    QPCIDevice *dev;
    QPCIBar bar;
    char *dir;
} Ne;

static void ne_start(Ne *ne, const char *props)
{
    if (!ne->dir) {
        ne->dir = g_dir_make_tmp("nitro-pci-test-XXXXXX", NULL);
        g_assert_nonnull(ne->dir);
    }
    ne->qts = qtest_initf("-M microvm,pcie=on,rtc=off -m 256M -smp 4 "
                          "-nodefaults -device nitro-enclaves-pci,addr=04.0,"
                          "dir=%s%s", ne->dir, props);
    qpci_init_generic(&ne->bus, ne->qts, NULL, false);
    ne->bus.ecam_alloc_ptr = MICROVM_ECAM_BASE;
    ne->bus.bus.mmio_alloc_ptr = MICROVM_MMIO_BASE;
    ne->bus.bus.mmio_limit = MICROVM_MMIO_END;
    ne->dev = qpci_device_find(&ne->bus.bus, NE_DEVFN);
    g_assert_nonnull(ne->dev);
    qpci_device_enable(ne->dev);
    ne->bar = qpci_iomap(ne->dev, 3, NULL);
}

static void ne_msix(Ne *ne)
{
    qpci_msix_enable(ne->dev);
    for (int v = 0; v < 2; v++) {
        uint64_t e = ne->dev->msix_table_off + v * 16;

        qpci_io_writel(ne->dev, ne->dev->msix_table_bar, e, MSI_ADDR(v));
        qpci_io_writel(ne->dev, ne->dev->msix_table_bar, e + 4, 0);
        qpci_io_writel(ne->dev, ne->dev->msix_table_bar, e + 8, MSI_DATA);
        qpci_io_writel(ne->dev, ne->dev->msix_table_bar, e + 12, 0);
        qtest_writel(ne->qts, MSI_ADDR(v), 0);
    }
}

static void ne_end(Ne *ne)
{
    g_autoptr(GDir) d = g_dir_open(ne->dir, 0, NULL);
    const char *name;

    g_free(ne->dev);
    qtest_quit(ne->qts);
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(ne->dir, name, NULL);

        unlink(p);
    }
    rmdir(ne->dir);
    g_free(ne->dir);
}

/* Was vector @vec raised since the last call?  (clears it) */
static bool ne_irq(Ne *ne, int vec)
{
    bool raised = qtest_readl(ne->qts, MSI_ADDR(vec)) == MSI_DATA;

    qtest_writel(ne->qts, MSI_ADDR(vec), 0);
    return raised;
}

/* Send a command the way the driver does; its reply */
static Reply ne_cmd(Ne *ne, uint32_t cmd, const void *req, size_t len)
{
    uint8_t raw[72];
    Reply r;

    qpci_memwrite(ne->dev, ne->bar, NE_SEND_DATA, req, len);
    qpci_io_writel(ne->dev, ne->bar, NE_COMMAND, cmd);
    g_assert_true(ne_irq(ne, 0));
    qpci_memread(ne->dev, ne->bar, NE_RECV_DATA, raw, sizeof(raw));
    r.rc = ldl_le_p(raw);
    r.slot_uid = ldq_le_p(raw + 8);
    r.cid = ldq_le_p(raw + 16);
    r.slot_count = ldq_le_p(raw + 24);
    r.mem_regions = ldq_le_p(raw + 32);
    r.mem_size = ldq_le_p(raw + 40);
    r.nr_vcpus = ldq_le_p(raw + 48);
    r.flags = ldq_le_p(raw + 56);
    r.state = lduw_le_p(raw + 64);
    return r;
}

static Reply ne_cmd_u64(Ne *ne, uint32_t cmd, uint64_t a)
{
    uint64_t req = cpu_to_le64(a);

    return ne_cmd(ne, cmd, &req, sizeof(req));
}

static Reply ne_cmd3(Ne *ne, uint32_t cmd, uint64_t a, uint64_t b,
                     uint64_t c)
{
    uint64_t req[3] = { cpu_to_le64(a), cpu_to_le64(b), cpu_to_le64(c) };

    return ne_cmd(ne, cmd, req, sizeof(req));
}

static Reply ne_add_vcpu(Ne *ne, uint64_t slot, uint32_t cpu)
{
    uint64_t req[2] = { cpu_to_le64(slot), cpu_to_le64(cpu) };

    return ne_cmd(ne, ADD_VCPU, req, sizeof(req));
}

static uint64_t ne_alloc(Ne *ne)
{
    uint8_t unused = 0;
    Reply r = ne_cmd(ne, ALLOC, &unused, 1);

    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.slot_uid, !=, 0);
    return r.slot_uid;
}

static void test_identity(void)
{
    Ne ne = { 0 };
    uint64_t size;
    QPCIBar bar;
    uint8_t cap;

    ne_start(&ne, "");
    g_assert_cmphex(qpci_config_readw(ne.dev, PCI_VENDOR_ID), ==, 0x1d0f);
    g_assert_cmphex(qpci_config_readw(ne.dev, PCI_DEVICE_ID), ==, 0xe4c1);
    bar = qpci_iomap(ne.dev, 3, &size);
    g_assert_cmpuint(size, >=, 0x1f0);
    g_assert_false(bar.is_io);
    cap = qpci_find_capability(ne.dev, PCI_CAP_ID_MSIX, 0);
    g_assert_cmpuint(cap, !=, 0);
    g_assert_cmpuint(qpci_msix_table_size(ne.dev), ==, 2);
    ne_end(&ne);
}

static void test_bringup(void)
{
    Ne ne = { 0 };
    uint8_t unused = 0;

    ne_start(&ne, "");
    ne_msix(&ne);
    /* as the driver's probe: disable, version 1, enable */
    qpci_io_writeb(ne.dev, ne.bar, NE_ENABLE, 0);
    g_assert_cmpuint(qpci_io_readb(ne.dev, ne.bar, NE_ENABLE), ==, 0);
    qpci_io_writew(ne.dev, ne.bar, NE_VERSION, 2);
    g_assert_cmpuint(qpci_io_readw(ne.dev, ne.bar, NE_VERSION), !=, 2);
    qpci_io_writew(ne.dev, ne.bar, NE_VERSION, 1);
    g_assert_cmpuint(qpci_io_readw(ne.dev, ne.bar, NE_VERSION), ==, 1);
    qpci_io_writeb(ne.dev, ne.bar, NE_ENABLE, 1);
    g_assert_cmpuint(qpci_io_readb(ne.dev, ne.bar, NE_ENABLE), ==, 1);
    /* the data windows take 1 to 8 byte accesses */
    qpci_io_writeq(ne.dev, ne.bar, NE_SEND_DATA + 8, 0x1122334455667788ULL);
    g_assert_cmphex(qpci_io_readq(ne.dev, ne.bar, NE_SEND_DATA + 8), ==,
                    0x1122334455667788ULL);
    g_assert_cmphex(qpci_io_readb(ne.dev, ne.bar, NE_SEND_DATA + 9), ==,
                    0x77);
    /* a reply counts in EVTCNT, and raises vector 0 only */
    g_assert_cmpuint(qpci_io_readl(ne.dev, ne.bar, NE_EVTCNT), ==, 0);
    g_assert_cmpint(ne_cmd(&ne, COUNT, &unused, 1).rc, ==, 0);
    g_assert_cmpuint(qpci_io_readl(ne.dev, ne.bar, NE_EVTCNT), ==, 1);
    g_assert_false(ne_irq(&ne, 1));
    ne_end(&ne);
}

static void test_commands(void)
{
    Ne ne = { 0 };
    uint8_t unused = 0;
    uint64_t slot, slot2;
    Reply r;

    ne_start(&ne, ",mem-regions=300");
    ne_msix(&ne);
    r = ne_cmd(&ne, ALLOC, &unused, 1);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.slot_uid, !=, 0);
    g_assert_cmpuint(r.mem_regions, ==, 300);
    slot = r.slot_uid;
    slot2 = ne_alloc(&ne);
    g_assert_cmpuint(slot2, !=, slot);
    g_assert_cmpuint(ne_cmd(&ne, COUNT, &unused, 1).slot_count, ==, 2);

    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 64 * MiB, 4 * MiB).rc, ==, 0);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 32 * MiB, 2 * MiB).rc, ==, 0);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 1).rc, ==, 0);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 3).rc, ==, 0);
    r = ne_cmd_u64(&ne, INFO, slot);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.slot_uid, ==, slot);
    g_assert_cmpuint(r.mem_regions, ==, 2);
    g_assert_cmpuint(r.mem_size, ==, 6 * MiB);
    g_assert_cmpuint(r.nr_vcpus, ==, 2);
    g_assert_cmpuint(r.state, ==, 0);

    {
        uint64_t req[2] = { cpu_to_le64(slot2), cpu_to_le64(2) };

        g_assert_cmpint(ne_cmd(&ne, ADD_BULK, req, sizeof(req)).rc, ==, 0);
        g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot2).nr_vcpus, ==, 2);
    }
    r = ne_cmd_u64(&ne, NEXT_SLOT, 0);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.slot_uid, ==, MIN(slot, slot2));
    r = ne_cmd_u64(&ne, NEXT_SLOT, MAX(slot, slot2));
    g_assert_cmpint(r.rc, ==, -EINVAL);
    /* no running enclave has CID 16 */
    g_assert_cmpint(ne_cmd_u64(&ne, GET_SLOT, 16).rc, ==, -EINVAL);

    /* no image at 8 MiB into the 6 MiB: the start is refused */
    r = ne_cmd3(&ne, START, slot, 0, 0);
    g_assert_cmpint(r.rc, ==, -ENOEXEC);
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).state, ==, 0);

    /* stop and free never fail, even twice */
    g_assert_cmpint(ne_cmd_u64(&ne, STOP, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, STOP, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, INFO, slot).rc, ==, -EINVAL);
    g_assert_cmpuint(ne_cmd(&ne, COUNT, &unused, 1).slot_count, ==, 1);
    /* the freed slot's memory and CPUs can be given again */
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot2, 64 * MiB, 2 * MiB).rc,
                    ==, 0);
    g_assert_cmpint(ne_add_vcpu(&ne, slot2, 1).rc, ==, 0);
    ne_end(&ne);
}

static void test_bad_requests(void)
{
    Ne ne = { 0 };
    uint8_t unused = 0;
    uint64_t slot, other;

    ne_start(&ne, ",slots=2,mem-regions=3");
    ne_msix(&ne);
    slot = ne_alloc(&ne);
    other = ne_alloc(&ne);
    g_assert_cmpint(ne_cmd(&ne, ALLOC, &unused, 1).rc, ==, -EBUSY);

    g_assert_cmpint(ne_cmd_u64(&ne, 0, slot).rc, ==, -EOPNOTSUPP);
    g_assert_cmpint(ne_cmd_u64(&ne, 12, slot).rc, ==, -EOPNOTSUPP);
    g_assert_cmpint(ne_cmd_u64(&ne, 0xffffffff, slot).rc, ==, -EOPNOTSUPP);
    g_assert_cmpint(ne_cmd_u64(&ne, INFO, 0).rc, ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, 12345, 64 * MiB, 2 * MiB).rc,
                    ==, -EINVAL);

    /* start without memory, without vCPUs */
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0, 0).rc, ==, -EINVAL);
    /* ranges: unaligned, empty, wrapping, outside RAM, overlapping */
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 64 * MiB + 4096, 2 * MiB).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 64 * MiB, MiB).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 64 * MiB, 0).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, -2 * MiB, 4 * MiB).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 1 * GiB, 2 * MiB).rc,
                    ==, -EFAULT);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 254 * MiB, 4 * MiB).rc,
                    ==, -EFAULT);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, MICROVM_ECAM_BASE,
                            2 * MiB).rc, ==, -EFAULT);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 64 * MiB, 4 * MiB).rc,
                    ==, 0);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 66 * MiB, 2 * MiB).rc,
                    ==, -EEXIST);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, other, 62 * MiB, 4 * MiB).rc,
                    ==, -EEXIST);
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0, 0).rc, ==, -EINVAL);
    /* more ranges than mem-regions */
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 80 * MiB, 2 * MiB).rc,
                    ==, 0);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 90 * MiB, 2 * MiB).rc,
                    ==, 0);
    g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, slot, 100 * MiB, 2 * MiB).rc,
                    ==, -E2BIG);
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).mem_regions, ==, 3);
    /* vCPUs: not in the parent, twice, in another slot */
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 4).rc, ==, -EINVAL);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 0xffffffff).rc, ==, -EINVAL);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 1).rc, ==, 0);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 1).rc, ==, -EEXIST);
    g_assert_cmpint(ne_add_vcpu(&ne, other, 1).rc, ==, -EEXIST);
    /* a vCPU and no memory: nothing to start */
    g_assert_cmpint(ne_add_vcpu(&ne, other, 2).rc, ==, 0);
    g_assert_cmpint(ne_cmd3(&ne, START, other, 0, 0).rc, ==, -EINVAL);
    {
        uint64_t req[2] = { cpu_to_le64(other), 0 };

        g_assert_cmpint(ne_cmd(&ne, ADD_BULK, req, sizeof(req)).rc,
                        ==, -EINVAL);
    }
    /* CIDs and flags a start cannot take */
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 3, 0).rc, ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0xffffffff, 0).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 1ULL << 32, 0).rc,
                    ==, -EINVAL);
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0, 2).rc, ==, -EINVAL);
    /* no image in the donated memory */
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0, 0).rc, ==, -ENOEXEC);

    /* after all that the device still works */
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).state, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, other).rc, ==, 0);
    g_assert_cmpint(ne_cmd(&ne, COUNT, &unused, 1).slot_count, ==, 0);
    ne_end(&ne);
}

/*
 * A "qemu" that records its command line and the image it was given,
 * then exits (0) or, if $dir/hold exists, waits to be ended
 */
static char *fake_program(Ne *ne, const char *name, const char *body)
{
    g_autofree char *text = g_strdup_printf("#!/bin/sh\ndir='%s'\n%s\n",
                                            ne->dir, body);
    char *path = g_build_filename(ne->dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_cmpint(chmod(path, 0755), ==, 0);
    return path;
}

/* Wait (with a deadline no load reaches) for the file @name in the dir */
static char *wait_file(Ne *ne, const char *name, size_t *len)
{
    g_autofree char *path = g_build_filename(ne->dir, name, NULL);
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
    char *text = NULL;

    while (!g_file_get_contents(path, &text, len, NULL)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
    return text;
}

static void wait_gone(Ne *ne, pid_t pid)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    g_assert_cmpint(pid, >, 0);
    while (kill(pid, 0) == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        /* QEMU reaps it from its main loop */
        qtest_readl(ne->qts, MSI_ADDR(1));
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(errno, ==, ESRCH);
}

static void wait_event(Ne *ne)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    while (!ne_irq(ne, 1)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
}

/* Write @img at 8 MiB into the concatenation of @ranges, as a launcher */
static void put_image(Ne *ne, const uint64_t (*ranges)[2], int n,
                      const uint8_t *img, uint64_t len)
{
    uint64_t skip = 8 * MiB;

    for (int i = 0; i < n && len; i++) {
        uint64_t paddr = ranges[i][0], size = ranges[i][1], k;

        if (skip >= size) {
            skip -= size;
            continue;
        }
        k = MIN(size - skip, len);
        qtest_bufwrite(ne->qts, paddr + skip, img, k);
        img += k;
        len -= k;
        skip = 0;
    }
}

/* A slot with the memory of @ranges (where put_image wrote) */
static uint64_t ne_slot_of(Ne *ne, const uint64_t (*ranges)[2], int n)
{
    uint64_t slot = ne_alloc(ne);

    for (int i = 0; i < n; i++) {
        g_assert_cmpint(ne_cmd3(ne, ADD_MEM, slot, ranges[i][0],
                                ranges[i][1]).rc, ==, 0);
    }
    return slot;
}

/*
 * Start an enclave of vCPU 1 in the memory of @ranges with @cid and
 * @flags: its slot, and in *@argv how the fake QEMU was run
 */
static uint64_t start_fake(Ne *ne, const uint64_t (*ranges)[2], int n,
                           uint64_t cid, uint64_t flags, char **argv)
{
    g_autofree char *path = g_build_filename(ne->dir, "argv", NULL);
    uint64_t slot;

    unlink(path);
    slot = ne_slot_of(ne, ranges, n);
    g_assert_cmpint(ne_add_vcpu(ne, slot, 1).rc, ==, 0);
    g_assert_cmpint(ne_cmd3(ne, START, slot, cid, flags).rc, ==, 0);
    *argv = wait_file(ne, "argv", NULL);
    return slot;
}

/* A client of the console socket @path */
static int console_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(sun.sun_path));
    strcpy(sun.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    return fd;
}

/* What the console @fd says until it has said @until, or up to its EOF */
static char *console_read(int fd, const char *until)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
    GString *text = g_string_new("");

    while (!until || !strstr(text->str, until)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char buf[256];
        ssize_t n;

        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        n = read(fd, buf, sizeof(buf));
        g_assert_cmpint(n, >=, 0);
        if (!n) {
            g_assert_null(until);
            break;
        }
        g_string_append_len(text, buf, n);
    }
    return g_string_free(text, false);
}

static void test_start(void)
{
    /* 14 MiB in ranges given out of address order; the image spans two */
    static const uint64_t ranges[][2] = {
        { 96 * MiB, 8 * MiB }, { 40 * MiB, 2 * MiB }, { 20 * MiB, 4 * MiB },
    };
    const uint64_t img_size = 2 * MiB + 4096;
    g_autofree uint8_t *img = g_malloc(img_size);
    g_autofree char *props = NULL, *copied = NULL, *argv = NULL;
    g_autofree char *bargv = NULL, *hold = NULL, *qemu = NULL;
    g_autofree char *backend = NULL, *console = NULL, *text = NULL;
    Ne ne = { 0 };
    int con, late;
    size_t len;
    uint64_t slot;
    Reply r;

    ne.dir = g_dir_make_tmp("nitro-pci-test-XXXXXX", NULL);
    g_assert_nonnull(ne.dir);
    qemu = fake_program(&ne, "qemu",
        "for a; do last=$a; done\n"
        "cp \"$last\" \"$dir/copied.eif\"\n"
        "echo \"$$ $@\" >\"$dir/argv.tmp\"\n"
        "mv \"$dir/argv.tmp\" \"$dir/argv\"\n"
        "echo 'Linux version (of a fake enclave)'\n"
        "[ -e \"$dir/panic\" ] && echo 'Kernel panic - not syncing: test'\n"
        "[ -e \"$dir/hold\" ] && exec sleep 600\n"
        "exit 0");
    backend = fake_program(&ne, "backend",
        "echo \"$@\" >\"$dir/bargv.tmp\"; mv \"$dir/bargv.tmp\" "
        "\"$dir/bargv\"\nexec sleep 600");
    props = g_strdup_printf(",qemu=%s,vsock-backend=%s,console-gateway=%s/gw",
                            qemu, backend, ne.dir);
    ne_start(&ne, props);
    ne_msix(&ne);

    /* an image: an EIF header with one section of img_size - 560 bytes */
    for (uint64_t i = 0; i < img_size; i++) {
        img[i] = i * 7 + (i >> 12);
    }
    memcpy(img, ".eif", 4);
    stw_be_p(img + 4, 4);
    stw_be_p(img + 6, 0);
    stw_be_p(img + 26, 1);
    stq_be_p(img + 28, 548);
    stq_be_p(img + 28 + 32 * 8, img_size - 548 - 12);

    slot = ne_slot_of(&ne, ranges, ARRAY_SIZE(ranges));
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 1).rc, ==, 0);
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 3).rc, ==, 0);
    put_image(&ne, ranges, ARRAY_SIZE(ranges), img, img_size);

    /* a start that ends by itself: vector 1, the slot is stopped */
    r = ne_cmd3(&ne, START, slot, 0, 1);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.cid, ==, 16);
    argv = wait_file(&ne, "argv", NULL);
    copied = wait_file(&ne, "copied.eif", &len);
    wait_event(&ne);
    g_assert_cmpuint(len, ==, img_size);
    g_assert_true(memcmp(copied, img, img_size) == 0);
    g_assert_nonnull(strstr(argv, "-M nitro-enclave,vsock=vsock0,acpi=on"));
    g_assert_nonnull(strstr(argv, "-m 14M -smp 2 "));
    g_assert_nonnull(strstr(argv, "virtio-nsm-device.debug-mode=on"));
    r = ne_cmd_u64(&ne, INFO, slot);
    g_assert_cmpuint(r.state, ==, 0xffff);
    g_assert_cmpuint(r.cid, ==, 16);
    g_assert_cmpuint(r.flags, ==, 1);
    g_assert_cmpint(ne_cmd3(&ne, START, slot, 0, 0).rc, ==, -EBUSY);
    g_assert_cmpint(ne_cmd_u64(&ne, STOP, slot).rc, ==, 0);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);

    /* a start that runs: its CID, until ENCLAVE_STOP ends it */
    hold = g_build_filename(ne.dir, "hold", NULL);
    g_assert_true(g_file_set_contents(hold, "", 0, NULL));
    g_free(argv);
    argv = g_build_filename(ne.dir, "argv", NULL);
    unlink(argv);
    g_free(bargv);
    bargv = g_build_filename(ne.dir, "bargv", NULL);
    unlink(bargv);
    g_clear_pointer(&bargv, g_free);
    slot = ne_slot_of(&ne, ranges, ARRAY_SIZE(ranges));
    g_assert_cmpint(ne_add_vcpu(&ne, slot, 1).rc, ==, 0);
    r = ne_cmd3(&ne, START, slot, 42, 0);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.cid, ==, 42);
    g_free(argv);
    argv = wait_file(&ne, "argv", NULL);
    g_assert_nonnull(strstr(argv, "-m 14M -smp 1 "));
    bargv = wait_file(&ne, "bargv", NULL);
    g_assert_nonnull(strstr(bargv, "--fd 3 --guest-cid 42 --uds-path "));
    /* not in debug mode: no console served */
    console = g_strdup_printf("%s/gw_10042", ne.dir);
    g_assert_false(g_file_test(console, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).state, ==, 2);
    r = ne_cmd_u64(&ne, GET_SLOT, 42);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpuint(r.slot_uid, ==, slot);
    /* its memory and CID belong to it */
    {
        uint64_t other = ne_alloc(&ne);

        g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, other, 40 * MiB, 2 * MiB).rc,
                        ==, -EEXIST);
        g_assert_cmpint(ne_cmd3(&ne, ADD_MEM, other, 60 * MiB, 8 * MiB).rc,
                        ==, 0);
        g_assert_cmpint(ne_add_vcpu(&ne, other, 2).rc, ==, 0);
        g_assert_cmpint(ne_cmd3(&ne, START, other, 42, 0).rc,
                        ==, -EADDRINUSE);
        g_assert_cmpint(ne_cmd_u64(&ne, FREE, other).rc, ==, 0);
    }
    g_assert_cmpint(ne_cmd_u64(&ne, STOP, slot).rc, ==, 0);
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).state, ==, 0xffff);
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);
    /* the enclave's process is gone (ended, and reaped by QEMU) */
    wait_gone(&ne, atoi(argv));

    /* a kernel panic on the console stops the enclave */
    g_free(hold);
    hold = g_build_filename(ne.dir, "panic", NULL);
    g_assert_true(g_file_set_contents(hold, "", 0, NULL));
    g_free(argv);
    slot = start_fake(&ne, ranges, ARRAY_SIZE(ranges), 0, 0, &argv);
    wait_event(&ne);
    g_assert_cmpuint(ne_cmd_u64(&ne, INFO, slot).state, ==, 0xffff);
    wait_gone(&ne, atoi(argv));
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);

    /*
     * In debug mode the console is served at console-gateway_<10000 +
     * CID>: from its first byte to every client, until the enclave stops
     */
    g_assert_cmpint(unlink(hold), ==, 0);
    g_free(argv);
    slot = start_fake(&ne, ranges, ARRAY_SIZE(ranges), 43, 1, &argv);
    g_free(console);
    console = g_strdup_printf("%s/gw_10043", ne.dir);
    con = console_connect(console);
    g_free(console_read(con, "Linux version (of a fake enclave)\n"));
    late = console_connect(console);
    g_free(console_read(late, "Linux version (of a fake enclave)\n"));
    g_assert_cmpint(ne_cmd_u64(&ne, STOP, slot).rc, ==, 0);
    text = console_read(con, NULL);
    g_assert_cmpstr(text, ==, "");
    close(con);
    close(late);
    g_assert_false(g_file_test(console, G_FILE_TEST_EXISTS));
    wait_gone(&ne, atoi(argv));
    g_assert_cmpint(ne_cmd_u64(&ne, FREE, slot).rc, ==, 0);
    ne_end(&ne);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/nitro-pci/identity", test_identity);
    qtest_add_func("/nitro-pci/bringup", test_bringup);
    qtest_add_func("/nitro-pci/commands", test_commands);
    qtest_add_func("/nitro-pci/bad-requests", test_bad_requests);
    qtest_add_func("/nitro-pci/start", test_start);
    return g_test_run();
}
