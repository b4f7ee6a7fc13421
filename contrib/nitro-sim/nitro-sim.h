/*
 * nitro-sim: internal interfaces shared by the files of the simulator
 *
 * The simulator is an LD_PRELOAD library that stands in for the
 * nitro_enclaves driver (/dev/nitro_enclaves), the Nitro hypervisor and a
 * booting enclave, plus a small CLI.  Each .c file has one job; this
 * header is the glue between them.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef NITRO_SIM_H
#define NITRO_SIM_H

#include <stdbool.h>
#include <sys/utsname.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/socket.h>

#define SIM_MIB                 (1024ULL * 1024ULL)
#define SIM_MIN_REGION          (2 * SIM_MIB)
#define SIM_IMAGE_OFFSET        (8 * SIM_MIB)
#define SIM_MAX_CPUS            1024
#define SIM_PARENT_CID          3
#define SIM_HYPERVISOR_CID      0
#define SIM_HEARTBEAT_PORT      9000
#define SIM_HEARTBEAT_BYTE      0xB7
#define SIM_CONSOLE_PORT_BASE   10000
#define SIM_FIRST_AUTO_CID      16
#define SIM_DEVICE_PATH         "/dev/nitro_enclaves"

/* ---- config.c: the environment, read at each device open/socket ---- */

enum { SIM_ARCH_X86_64 = 0, SIM_ARCH_AARCH64 = 1 };
enum { SIM_HB_OK, SIM_HB_BAD, SIM_HB_NONE };
enum { SIM_CONTIG_CALL, SIM_CONTIG_PAGE };
enum { SIM_BOOT_SIM, SIM_BOOT_QEMU };
enum { SIM_TOPO_EC2, SIM_TOPO_CONSECUTIVE };

typedef struct SimConfig {
    char dir[PATH_MAX];             /* NITRO_SIM_DIR (created) */
    char log[PATH_MAX + 32];        /* NITRO_SIM_LOG */
    char ns[64];                    /* abstract AF_UNIX namespace prefix */
    uint64_t pool[SIM_MAX_CPUS / 64];   /* NITRO_SIM_CPUS bitmap */
    unsigned threads_per_core;      /* NITRO_SIM_THREADS_PER_CORE */
    unsigned host_cpus;             /* NITRO_SIM_HOST_CPUS */
    unsigned max_regions;           /* NITRO_SIM_MAX_REGIONS */
    int contig;                     /* NITRO_SIM_CONTIG */
    uint64_t min_mem;               /* NITRO_SIM_MIN_MEM_MIB, in bytes */
    unsigned boot_delay_ms;         /* NITRO_SIM_BOOT_DELAY_MS */
    int heartbeat;                  /* NITRO_SIM_HEARTBEAT */
    unsigned heartbeat_timeout_ms;  /* NITRO_SIM_HEARTBEAT_TIMEOUT_MS */
    uint64_t lifetime_ms;           /* NITRO_SIM_LIFETIME_MS */
    unsigned console_tail_ms;       /* NITRO_SIM_CONSOLE_TAIL_MS */
    uint64_t console_bytes;         /* NITRO_SIM_CONSOLE_BYTES */
    int arch;                       /* NITRO_SIM_ARCH */
    int numa_node;                  /* NITRO_SIM_NUMA_NODE, -1: no check */
    uint64_t fake_page_size;        /* NITRO_SIM_FAKE_PAGE_SIZE, 0: none */
    unsigned va_bits;               /* NITRO_SIM_VA_BITS, 0: the host's */
    int boot;                       /* NITRO_SIM_BOOT */
    char qemu[PATH_MAX];            /* NITRO_SIM_QEMU, "": default */
    char backend[PATH_MAX];         /* NITRO_SIM_VSOCK_BACKEND, "": default */
    uint32_t vsock_cid;             /* NITRO_SIM_VSOCK_CID, 0: parent */
    int topology;                   /* NITRO_SIM_TOPOLOGY */
    unsigned numa_nodes;            /* NITRO_SIM_NUMA_NODES */
    char instance_id[32];           /* NITRO_SIM_INSTANCE_ID, "": made up */
    char iam_role[2048];            /* NITRO_SIM_IAM_ROLE, "": none */
    bool readonly;                  /* create no file or directory (CLI) */
} SimConfig;

/*
 * Fill @cfg from the environment, creating the directory if @create (else
 * @cfg is read-only: nothing is created in it); on error put why in @err,
 * set errno (ENOTDIR: the directory is a file, EINVAL: a bad value) and
 * return false.
 */
bool sim_config_load(SimConfig *cfg, bool create, char *err, size_t errlen);
bool sim_cpu_list_parse(const char *s, uint64_t *bitmap, char *err,
                        size_t errlen);
static inline bool sim_cpu_in(const uint64_t *bm, unsigned cpu)
{
    return cpu < SIM_MAX_CPUS && (bm[cpu / 64] >> (cpu % 64)) & 1;
}
static inline void sim_cpu_set(uint64_t *bm, unsigned cpu)
{
    if (cpu < SIM_MAX_CPUS) {
        bm[cpu / 64] |= 1ULL << (cpu % 64);
    }
}
/* SMT layout: the core of @cpu, and thread @t (from 0) of @core */
unsigned sim_cpu_core(const SimConfig *cfg, unsigned cpu);
unsigned sim_core_cpu(const SimConfig *cfg, unsigned core, unsigned t);
/* the NUMA node of @cpu: the cores are split evenly between the nodes */
unsigned sim_cpu_node(const SimConfig *cfg, unsigned cpu);
const char *sim_arch_name(int arch);
int sim_host_arch(void);
/* decimal or 0x hex; false if no digits or overflow */
bool sim_parse_u64(const char *s, const char **endp, uint64_t *v);
/* abstract socket name of (cid, port) in the namespace of @cfg */
socklen_t sim_vsock_name(const SimConfig *cfg, uint32_t cid, uint32_t port,
                         struct sockaddr *sa);
/* parse an abstract name back into (cid, port) */
bool sim_vsock_parse_name(const struct sockaddr *sa, socklen_t len,
                          uint32_t *cid, uint32_t *port);
socklen_t sim_ctl_name(const SimConfig *cfg, uint32_t cid,
                       struct sockaddr *sa);

/* ---- log.c: the JSON-lines event log ---- */

typedef struct SimJson {
    char *buf;
    size_t len, cap;
} SimJson;

void sim_json_begin(SimJson *j, const char *event);
void sim_json_str(SimJson *j, const char *key, const char *val);
void sim_json_u64(SimJson *j, const char *key, uint64_t val);
void sim_json_i64(SimJson *j, const char *key, int64_t val);
void sim_json_hex(SimJson *j, const char *key, uint64_t val);
void sim_json_bool(SimJson *j, const char *key, bool val);
void sim_json_raw(SimJson *j, const char *key, const char *raw);
/* add "result": 0 or "errno"/"error" for a positive errno value */
void sim_json_result(SimJson *j, int err);
/* finish the object and append it as one line to cfg->log */
void sim_json_emit(SimJson *j, const SimConfig *cfg);
void sim_json_escape(SimJson *j, const char *s);
const char *sim_errno_name(int err);

/* ---- eif-check.c: EIF parser and PCRs, over scattered memory ---- */

typedef struct SimSeg {
    const uint8_t *p;
    uint64_t len;
} SimSeg;

typedef struct SimEif {
    bool ok;
    char message[256];
    bool crc_ok;
    int arch;
    unsigned version;
    unsigned nsections;
    unsigned nramdisks;
    bool is_signed;             /* has a signature section */
    uint64_t size;              /* end of the last section */
    uint64_t kernel_size;
    /* where the kernel's and the ramdisks' data are (file order) */
    uint64_t kernel_off;
    uint64_t ramdisk_off[32], ramdisk_size[32];
    char *cmdline;              /* malloc'd, NUL terminated */
    uint8_t pcr[3][48];
    char pcr_hex[3][97];
} SimEif;

/*
 * Check the EIF that starts @offset bytes into the concatenation of @segs
 * and compute its PCRs.  @arch is the simulated host arch (-1: any).
 */
void sim_eif_check(const SimSeg *segs, int nsegs, uint64_t offset, int arch,
                   SimEif *r);
void sim_eif_free(SimEif *r);

/* ---- registry.c: enclaves of a simulation directory, across processes */

typedef struct SimRegEntry {
    uint64_t slot;
    pid_t pid;
    unsigned long long starttime;
    char state[16];             /* init, running, stopped */
    uint32_t cid;
    uint64_t mem;
    int debug;
    char vcpus[512];            /* "2,3" */
} SimRegEntry;

typedef struct SimRegistry {
    uint64_t next_slot;
    int n;
    SimRegEntry *e;
    int lockfd;                 /* -1: read-only and nothing ever ran */
    const SimConfig *cfg;
    char err[PATH_MAX + 128];   /* why open or close failed, naming the file */
} SimRegistry;

/*
 * lock and read (dropping entries of dead processes, removing their
 * files); false: errno and r->err set
 */
bool sim_reg_open(SimRegistry *r, const SimConfig *cfg);
/* write back (if @write) and unlock; false: the write failed, errno, r->err */
bool sim_reg_close(SimRegistry *r, bool write);
SimRegEntry *sim_reg_find(SimRegistry *r, pid_t pid, uint64_t slot);
SimRegEntry *sim_reg_add(SimRegistry *r);
void sim_reg_remove(SimRegistry *r, SimRegEntry *e);
bool sim_reg_cpu_used(SimRegistry *r, unsigned cpu);
bool sim_reg_cid_used(SimRegistry *r, uint32_t cid);
unsigned long long sim_proc_starttime(pid_t pid);
/* print why the registry failed (r->err, naming the file): -errno */
int sim_reg_fail(SimRegistry *r);

/* ---- memory.c: donated regions as the kernel sees them ---- */

typedef struct SimMapInfo {
    bool mapped;                /* whole range covered by mappings */
    bool hugetlb;               /* every mapping is hugetlb */
    uint64_t page_size;         /* smallest KernelPageSize seen */
    int prot;                   /* PROT_* of the first mapping */
    int numa_node;              /* node of the first page, -1: unknown */
    bool numa_mixed;            /* pages on different nodes */
    char name[128];             /* pathname of the first mapping */
} SimMapInfo;

bool sim_map_info(uint64_t addr, uint64_t size, SimMapInfo *mi);

/* ---- driver.c: the device and enclave fds, the ioctl state machine ---- */

enum { SIM_ST_INIT, SIM_ST_RUNNING, SIM_ST_STOPPED };

typedef struct SimRegion {
    uint64_t addr, size, page_size;
    int prot;
} SimRegion;

typedef struct SimEnclave {
    struct SimEnclave *next;
    pid_t owner;
    SimConfig cfg;
    uint64_t slot;
    dev_t dev;
    ino_t ino;                  /* inode of the pipe the app holds */
    int app_fd;                 /* read end as first handed out */
    int wr_fd;                  /* write end: closed = POLLHUP */
    int state;
    bool released;
    bool at_exit;
    SimRegion *regions;
    int nregions;
    int nranges;                /* physical ranges, for the region limit */
    uint64_t mem_size;
    uint32_t vcpus[SIM_MAX_CPUS];
    int nvcpus;
    uint32_t cid;
    uint64_t flags;
    SimEif eif;
    /* enclave.c */
    pthread_t thread;
    bool thread_running;
    int wake[2];
    const char *stop_req;
    const char *stop_reason;
    bool linger_end;            /* released: the thread may end */
    pthread_cond_t cond;
    int console_listen;
    int ctl_listen;
    int *clients;
    int nclients;
    char *con_buf;
    size_t con_len, con_cap;
    char console_path[PATH_MAX + 32];
    /* boot.c: the emulated machine of NITRO_SIM_BOOT=qemu */
    pid_t qemu_pid, backend_pid;
    int qemu_pidfd, backend_pidfd;
    int serial_fd;              /* the machine's ttyS0, read end */
    char line[256];             /* the serial line being received */
    size_t line_len;
    uint64_t panic_ms;          /* a panic started: stop by then, or 0 */
    uint64_t panic_quiet_ms;    /* ... or once it is quiet by then */
    char boot_base[PATH_MAX + 32];  /* $dir/enclave-<cid>, files prefix */
} SimEnclave;

/* registry.c: the enclaves of this process, the lock of their state */
extern pthread_mutex_t sim_lock;
extern SimEnclave *sim_enclaves;
/* lock held: make the registry's line of @e what @e is now (or drop it) */
void sim_reg_put(SimRegistry *r, SimEnclave *e, bool remove);
/* mirror @e into the registry (or drop it): 0, or -errno, reason printed */
int sim_enclave_sync(SimEnclave *e, bool remove);

/* ---- real.c: the real libc functions (the bottom layer) ---- */

typedef struct SimReal {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*close)(int);
    int (*socket)(int, int, int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    void *(*fopen)(const char *, const char *);
    void *(*fopen64)(const char *, const char *);
    int (*uname)(struct utsname *);
} SimReal;

extern SimReal sim_real;
void sim_real_init(void);
/* the next definition of @name (normally libc's); aborts if none */
void *sim_real_next(const char *name);

/* intercept.c: the _FORTIFY_SOURCE variants of open */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* open of the device: a new fd, or -1 with errno */
int sim_device_open(int flags, const char *via);
/* is @fd one of ours?  returns 1 and sets *ret/errno if handled */
bool sim_ioctl(int fd, unsigned long req, void *arg, int *ret);
/* called before the real close of @fd */
void sim_before_close(int fd, bool *is_enclave, dev_t *dev, ino_t *ino);
/* called after the real close of an enclave fd */
void sim_after_close(dev_t dev, ino_t ino);
/* release resources of an enclave whose fd is gone (lock held) */
void sim_enclave_release(SimEnclave *e, bool restore);
/* at exit(): the kernel is about to close every enclave fd */
void sim_process_exit(void);

/* ---- enclave.c: the booting enclave, console and stop ---- */

/* CLOCK_MONOTONIC in milliseconds */
uint64_t sim_now_ms(void);
/* at NE_START_ENCLAVE, lock held: listeners and the thread */
int sim_enclave_launch(SimEnclave *e);
/* ask the enclave to stop and wait until it has (lock held) */
void sim_enclave_stop(SimEnclave *e, const char *reason);

/* ---- boot.c: NITRO_SIM_BOOT=qemu, the enclave in -M nitro-enclave ---- */

/*
 * At NE_START_ENCLAVE, lock held, memory still readable: start the
 * vhost-user-vsock backend and QEMU with the loaded image.  0 or errno,
 * with the reason logged and printed.
 */
int sim_boot_start(SimEnclave *e);
/* serial output is readable: copy it to the console; a stop reason or NULL */
const char *sim_boot_serial(SimEnclave *e, void (*out)(SimEnclave *,
                                                       const char *, size_t));
/* sim_now_ms() at which to stop the enclave (its panic), 0: none */
uint64_t sim_boot_deadline(SimEnclave *e);
/*
 * The enclave stops (lock held): end QEMU and copy the rest of its
 * serial output to the console
 */
void sim_boot_drain(SimEnclave *e, void (*out)(SimEnclave *, const char *,
                                               size_t));
/* a child exited (its pidfd is readable): the stop reason */
const char *sim_boot_exited(SimEnclave *e);
/* end both processes and remove the files (lock held) */
void sim_boot_stop(SimEnclave *e);
/* the gateway of a booted enclave (for host -> enclave connections) */
void sim_boot_gateway_path(const SimConfig *cfg, uint32_t cid, char *buf,
                           size_t len);

/* ---- sysfs.c: ne_cpus and the SMT layout of the simulated parent ---- */

bool sim_sysfs_path(const char *path);
/* a read-only fd with the file's content, or -1 with errno */
int sim_sysfs_open(const char *path, int flags);
/*
 * The parent's instance ID, "i-" and 17 hex digits: one per simulation
 * directory (FNV-1a of its path), in board_asset_tag as on EC2
 */
void sim_instance_id(const SimConfig *cfg, char *buf, size_t len);

/* ---- vsock.c: AF_VSOCK over AF_UNIX ---- */

extern volatile int sim_vsock_active; /* fast path hint, read unlocked */
int sim_vsock_socket(int domain, int type, int protocol);
/* each returns 1 if @fd was a simulated vsock socket (result in *ret) */
int sim_vsock_bind(int fd, const struct sockaddr *sa, socklen_t len, int *ret);
int sim_vsock_listen(int fd, int backlog, int *ret);
int sim_vsock_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags,
                     int *ret);
int sim_vsock_connect(int fd, const struct sockaddr *sa, socklen_t len,
                      int *ret);
int sim_vsock_getname(int fd, struct sockaddr *sa, socklen_t *len, bool peer,
                      int *ret);
int sim_vsock_getsockopt(int fd, int level, int name, void *val,
                         socklen_t *len, int *ret);
int sim_vsock_setsockopt(int fd, int level, int name, const void *val,
                         socklen_t len, int *ret);
void sim_vsock_forget(dev_t dev, ino_t ino);
/*
 * Internal sockets of the simulated enclave and hypervisor: AF_UNIX
 * sockets bound to the name of (@cid, @port).  Return fd or -errno.
 */
int sim_vsock_listen_as(const SimConfig *cfg, uint32_t cid, uint32_t port);
int sim_vsock_connect_as(const SimConfig *cfg, uint32_t local_cid,
                         uint32_t cid, uint32_t port);

#endif
