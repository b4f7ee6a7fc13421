/*
 * nitro-sim tests: a launcher that drives /dev/nitro_enclaves as nitro-cli
 *
 * The sequence of nitro-brief.md, section 2: open the device, NE_CREATE_VM,
 * hugetlb memory, NE_GET_IMAGE_LOAD_INFO, copy the EIF, one
 * NE_SET_USER_MEMORY_REGION per region, NE_ADD_VCPU, listen on vsock
 * port 9000, NE_START_ENCLAVE, wait for the heartbeat, read the console.
 * Plus the helpers the tests share (huge pages, temporary simulation
 * directories, the event log).
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef NITRO_SIM_LAUNCHER_H
#define NITRO_SIM_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_MAX_REGIONS 64

typedef struct NlParams {
    const uint8_t *eif;
    size_t eif_len;
    unsigned mem_mib;               /* 0: 64 */
    unsigned region_mib;            /* 0: one region of mem_mib */
    unsigned ncpus;                 /* 0: 2 */
    bool debug;
    uint64_t cid;
    bool no_heartbeat_listen;
    void (*before_start)(void);     /* called just before NE_START_ENCLAVE */
} NlParams;

typedef struct NlEnclave {
    int dev, efd, hb_listen;
    uint8_t *region[NL_MAX_REGIONS];
    size_t region_size;
    int nregions;
    uint64_t slot, cid;
    uint32_t vcpus[64];
    int nvcpus;
    const char *failed_step;        /* on failure */
    int err;                        /* errno of the failed step */
} NlEnclave;

/* launch up to and including NE_START_ENCLAVE; 0 or -1 */
int nl_launch(const NlParams *p, NlEnclave *e);
/* close what nl_launch opened (the enclave fd last), unmap the memory */
void nl_close(NlEnclave *e);
/*
 * nitro-cli's heartbeat wait: accept on the listener, read 0xB7, answer
 * 0xB7.  Gives up if the enclave fd reports POLLHUP.  0, or -1 with a
 * reason in @why.
 */
int nl_heartbeat(NlEnclave *e, int timeout_ms, char *why, size_t whylen);
/* the same, answering @answer instead of 0xB7 */
int nl_heartbeat_answer(NlEnclave *e, int timeout_ms, uint8_t answer,
                        char *why, size_t whylen);
/* connect to the debug console (0, cid + 10000); fd or -1 */
int nl_console_connect(uint64_t cid);
/* read @fd until EOF or @timeout_ms; NUL terminated; *eof set at EOF */
char *nl_read_all(int fd, int timeout_ms, size_t *len, bool *eof);
/* read @fd until @needle shows up (or EOF/timeout) */
char *nl_read_until(int fd, const char *needle, int timeout_ms,
                    size_t *len);
/* wait for POLLHUP on @fd; true if it came within @timeout_ms */
bool nl_wait_hup(int fd, int timeout_ms);

/* make sure @pages free 2 MiB huge pages exist; 0, or -1 and @why */
int nl_hugepages(unsigned pages, char *why, size_t whylen);
/* @size bytes of hugetlb memory (MFD_HUGETLB memfd, MAP_SHARED) */
void *nl_huge_alloc(size_t size);
/* a fresh simulation directory, exported as NITRO_SIM_DIR */
const char *nl_new_sim_dir(const char *tag);
/* the event log of the current simulation directory */
const char *nl_log_path(void);
/* lines of the event log that contain every one of the strings */
int nl_log_count(const char *s1, const char *s2, const char *s3);
char *nl_read_file(const char *path, size_t *len);

#endif
