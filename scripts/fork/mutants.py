#!/usr/bin/env python3
"""Mutation run: does a test fail when the behaviour it covers breaks?

Each mutant below is one single-point change to a file of the overlay
(or of a QEMU file as the patch series leaves it): a string that must
appear exactly once in it, and what replaces it.  For
each, the script changes the file in the build tree (build/tree, which
`make` re-creates from the overlay: the checkout is never touched),
rebuilds incrementally, runs only the tests that can see that code, and
puts the file back.  The selected mutants' tests first run on the
unmutated tree: a mutant is killed when one of its tests that passed
there fails.  A test that fails unmutated is named and the run stops
without a score; one skipped unmutated is named (it kills nothing).

Usage: mutants.py [--list] [NAME...]   (default: every mutant)
Ends with "N killed, N survived" and the survivors' names; exit status 1
when a mutant survived or could not be applied (stale: its string is no
longer in the file, so the list needs updating).  Not part of `make
check`: it builds and tests once per mutant (`make mutants`).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402  (scripts/fork/check.py)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TREE = os.path.join(TOP, 'build', 'tree')
OBJ = check.OBJ
MESON = check.MESON

Mutant = namedtuple('Mutant', 'name file old new tests')

# The tests, by meson name (x86_64 is enough: the code is shared)
LAUNCH = 'func-x86_64-nitro_launch'
ERRORS = 'func-x86_64-nitro_errors'
VSOCK = 'func-x86_64-nitro_vsock'
LIFECYCLE = 'func-x86_64-nitro_lifecycle'
EIF_UNIT = 'test-eif'
QEMU_EIF = 'qemu-eif'
SIM = ['nitro-sim-driver', 'nitro-sim-enclave']
MEMORY = 'func-x86_64-nitro_memory'
BOOT = 'func-x86_64-nitro_boot'
VHOST_VSOCK = 'nitro-vhost-user-vsock'
OP_MATRIX = 'func-x86_64-nitro_op_matrix'
NITRO_CLI = 'func-x86_64-nitro_cli'
ATTEST = 'nitro-attest'
NE_PCI = 'qtest-x86_64/nitro-pci-test'
PARENT_VM = 'nitro-parent-vm'
BOOT_AARCH64 = 'func-aarch64-nitro_boot'


MUTANTS = [
    # The heartbeat, the console, the enclave's life
    Mutant('heartbeat-byte', 'hw/nitro/heartbeat.c',
           '#define NITRO_HEARTBEAT_BYTE 0xB7',
           '#define NITRO_HEARTBEAT_BYTE 0xB6', [VSOCK]),
    Mutant('heartbeat-any-peer', 'hw/nitro/heartbeat.c',
           'if (!s->cid || peer.svm_cid != s->cid || s->conn_fd >= 0) {',
           'if (s->conn_fd >= 0) {', [LIFECYCLE]),
    Mutant('heartbeat-timeout', 'hw/nitro/heartbeat.c',
           'return 90 * DIV_ROUND_UP(b->image_size, 6 * GiB) +',
           'return 180 * DIV_ROUND_UP(b->image_size, 6 * GiB) +', [VSOCK]),
    Mutant('heartbeat-warn-only-stops', 'hw/nitro/heartbeat.c',
           '        nitro_heartbeat_close_conn(s);\n'
           '        warn_report(',
           '        nitro_heartbeat_close(s);\n'
           '        warn_report(', [LIFECYCLE]),
    Mutant('console-port', 'hw/nitro/serial-vsock.c',
           '#define NITRO_CONSOLE_PORT_BASE 10000',
           '#define NITRO_CONSOLE_PORT_BASE 10001', [VSOCK]),
    Mutant('heartbeat-busy-port-fatal', 'hw/nitro/heartbeat.c',
           '        if (errno == EADDRINUSE) {\n            *busy = true;',
           '        if (false) {\n            *busy = true;', [LIFECYCLE]),
    Mutant('console-blocks', 'hw/nitro/serial-vsock.c',
           'int n = qemu_chr_fe_write(&s->chr, s->buf + s->buf_off,',
           'int n = qemu_chr_fe_write_all(&s->chr, s->buf + s->buf_off,',
           [VSOCK]),
    Mutant('console-no-drain', 'hw/nitro/serial-vsock.c',
           'return NITRO_SERIAL_VSOCK(dev)->fd >= 0;',
           'return NITRO_SERIAL_VSOCK(dev)->fd >= 0 && false;',
           [LIFECYCLE]),
    Mutant('pollhup-ignored', 'accel/nitro/nitro-accel.c',
           'qemu_set_fd_handler(s->enclave_fd, nitro_enclave_hangup, NULL, s);',
           'qemu_set_fd_handler(s->enclave_fd,\n'
           '                    false ? nitro_enclave_hangup : NULL, NULL, s);',
           [VSOCK]),
    Mutant('fd-kept-at-exit', 'accel/nitro/nitro-accel.c',
           '    trace_nitro_exit(s->cid);\n    nitro_terminate(s);',
           '    trace_nitro_exit(s->cid);', [VSOCK]),
    Mutant('debug-flag', 'accel/nitro/nitro-driver.c',
           '.flags = debug_mode ? NE_ENCLAVE_DEBUG_MODE : 0,', '.flags = 0,',
           [LAUNCH]),
    Mutant('cid-bounds', 'accel/nitro/nitro-accel.c',
           'if (cid != 0 && (cid <= 3 || cid >= UINT32_MAX)) {',
           'if (cid != 0 && (cid <= 3 || cid > UINT32_MAX)) {', [ERRORS]),
    Mutant('stop-allowed', 'accel/nitro/nitro-accel.c',
           'if (s->state == NITRO_ENCLAVE_RUNNING) {\n'
           '        error_setg(errp, "an enclave cannot be paused");',
           'if (s->state == NITRO_ENCLAVE_RUNNING && false) {\n'
           '        error_setg(errp, "an enclave cannot be paused");',
           [LIFECYCLE]),
    Mutant('memory-readable', 'accel/nitro/nitro-accel.c',
           'if (s->state >= NITRO_ENCLAVE_RUNNING) {',
           'if (s->state >= NITRO_ENCLAVE_RUNNING && false) {', [LIFECYCLE]),
    Mutant('no-migration-blocker', 'accel/nitro/nitro-accel.c',
           'if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {',
           'if (false) {', [LIFECYCLE]),
    Mutant('incoming-accepted', 'accel/nitro/nitro-accel.c',
           'if (runstate_check(RUN_STATE_INMIGRATE)) {', 'if (false) {',
           [LIFECYCLE]),
    Mutant('start-while-dirty-rate', 'accel/nitro/nitro-accel.c',
           'return nitro_dirty_rate_idle(errp) &&',
           'return (true || nitro_dirty_rate_idle(errp)) &&',
           [LIFECYCLE]),
    Mutant('stopping-says-running', 'accel/nitro/nitro-accel.c',
           '[NITRO_ENCLAVE_STOPPING] = "stopping",',
           '[NITRO_ENCLAVE_STOPPING] = "running",', [LIFECYCLE]),
    Mutant('panic-exits-0', 'accel/nitro/nitro-accel.c',
           'qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_GUEST_PANIC,\n'
           '                                                   EXIT_FAILURE);',
           'qemu_system_shutdown_request(SHUTDOWN_CAUSE_GUEST_PANIC);',
           [LIFECYCLE]),
    Mutant('no-heartbeat-accepted', 'hw/nitro/vsock-bus.c',
           'if (!bridge->external_heartbeat &&', 'if (false &&', [LIFECYCLE]),
    Mutant('bios-accepted', 'hw/nitro/machine.c',
           'if (ms->firmware) {', 'if (false) {', [LIFECYCLE]),

    # The image
    Mutant('image-offset', 'hw/nitro/image.c',
           'uint8_t *dst = nitro_ram_host(ms) + offset;',
           'uint8_t *dst = nitro_ram_host(ms);', [LAUNCH]),
    Mutant('initrd-list', 'hw/nitro/image.c',
           'g_strsplit(ms->initrd_filename, ":", -1);',
           'g_strsplit(ms->initrd_filename, ",", -1);', [LAUNCH]),
    Mutant('default-cmdline', 'hw/nitro/image.c',
           'ms->kernel_cmdline : eif_default_cmdline(nitro_image_arch()),',
           'ms->kernel_cmdline : "",', [LAUNCH]),
    Mutant('arch-unchecked', 'hw/nitro/image.c',
           'if (arch != nitro_image_arch()) {', 'if (false) {', [ERRORS]),
    Mutant('crc-unchecked', 'hw/core/eif-parse.c',
           'if (crc != p->header_crc) {', 'if (false) {',
           [ERRORS, EIF_UNIT]),
    Mutant('pcr1-all-ramdisks', 'hw/core/eif-measure.c',
           'm->hash[s->nth ? EIF_PCR2 : EIF_PCR1]', 'm->hash[EIF_PCR1]',
           [LAUNCH, EIF_UNIT]),
    Mutant('changed-file-unseen', 'hw/core/eif-measure.c',
           'if (pos != s->size || n || crc != s->crc32) {',
           'if (pos != s->size || n) {', [LIFECYCLE, EIF_UNIT]),
    Mutant('fifo-opened', 'hw/core/eif.c',
           '    if (!S_ISREG(st.st_mode)) {\n'
           '        error_setg(errp, "%s: %s", path, eif_file_kind(st.st_mode));\n'
           '        return -1;',
           '    if (false) {\n'
           '        error_setg(errp, "%s: %s", path, eif_file_kind(st.st_mode));\n'
           '        return -1;', [ERRORS, QEMU_EIF, EIF_UNIT]),
    Mutant('output-not-removed', 'contrib/qemu-eif/output.c',
           '    if (tmp) {\n        unlink(tmp);\n    }',
           '    (void)tmp;', [QEMU_EIF]),

    # Guest RAM as the parent has it
    Mutant('preflight-skipped', 'hw/nitro/ram-plan.c',
           'if (p.free < need) {', 'if (false) {', [ERRORS]),
    Mutant('donations-unbounded', 'accel/nitro/nitro-driver.h',
           '#define NITRO_DONATION_MAX (1ULL << 30)',
           '#define NITRO_DONATION_MAX (1ULL << 40)', [MEMORY]),
    Mutant('small-memory-allowed', 'hw/nitro/image.c',
           'if (img->allow_small_memory || ms->ram_size >= min) {',
           'if (true) {', [ERRORS]),
    Mutant('ram-smallest-pages-first', 'hw/nitro/ram-plan.c',
           'uint64_t size = g_array_index(host, uint64_t, i);',
           'uint64_t size = g_array_index(host, uint64_t, host->len - 1 - i);',
           [MEMORY]),
    Mutant('ram-not-bound', 'hw/nitro/machine-ram.c',
           '    if (node < 0) {\n        return true;\n    }\n'
           '    if (node >= NITRO_MAX_NODES) {',
           '    if (node < 0 || true) {\n        return true;\n    }\n'
           '    if (node >= NITRO_MAX_NODES) {', [MEMORY]),

    # Driver errors and their hints
    Mutant('min-mem-hint', 'accel/nitro/nitro-driver.c',
           '"Use -m 64M or more.\\n" },', 'NULL },', [ERRORS]),
    Mutant('cid-in-use-message', 'accel/nitro/nitro-driver.c',
           'if (errno == EADDRINUSE) {', 'if (false) {', [ERRORS]),

    # The simulator models the driver
    Mutant('sim-any-reply', 'contrib/nitro-sim/enclave.c',
           'if (r == 1 && b == SIM_HEARTBEAT_BYTE &&',
           'if (r == 1 &&', SIM),
    Mutant('sim-dir-unchecked', 'contrib/nitro-sim/driver.c',
           'if (access(d->cfg.dir, W_OK | X_OK) < 0) {', 'if (false) {',
           [ERRORS]),
    # The arm64 real boot (-M virt)
    Mutant('sim-aarch64-no-console', 'hw/nitro/enclave-launch.c',
           '"%s console=ttyAMA0", l->cmdline', '"%s", l->cmdline',
           [BOOT_AARCH64]),
    Mutant('sim-aarch64-pcr8-unset', 'contrib/nitro-sim/boot.c',
           '[8] = has_pcr8 ? pcr8 : NULL,', '[8] = NULL,', [BOOT_AARCH64]),
    # The simulator against the real driver's rules (ne-rules.c)
    Mutant('sim-size-0-passes', 'contrib/nitro-sim/driver.c',
           'return -ENOMEM;\n    }\n    if (!sim_map_info',
           'return 0;\n    }\n    if (!sim_map_info', SIM + [PARENT_VM]),
    Mutant('sim-user-pointer-trusted', 'contrib/nitro-sim/driver.c',
           'if (n < 0 && (errno == ENOSYS || errno == EPERM)) {',
           'if (true) {', SIM + [PARENT_VM]),
    Mutant('sim-forked-child-allowed', 'contrib/nitro-sim/driver.c',
           '} else if (e && e->owner != getpid() &&',
           '} else if (false &&', SIM + [PARENT_VM]),
    Mutant('sim-pool-cpus-online', 'contrib/nitro-sim/sysfs.c',
           '"%d", !sim_cpu_in(cfg.pool, n));', '"1");', SIM + [PARENT_VM]),
    Mutant('sim-half-cores', 'contrib/nitro-sim/driver.c',
           'return -NE_ERR_FULL_CORES_NOT_USED;', 'break;', SIM + [ERRORS]),
    Mutant('sim-console-tail-ignored', 'contrib/nitro-sim/enclave.c',
           'if (!e->cfg.console_tail_ms || !e->nclients) {', 'if (true) {',
           [LIFECYCLE]),
    # (its panic line: its end line only stops the enclave sooner than
    # the quiet timeout after it would, which no test can time)
    Mutant('sim-panic-unseen', 'contrib/nitro-sim/boot.c',
           'if (!e->panic_ms && strstr(e->line, PANIC_LINE)) {',
           'if (false) {', [BOOT]),

    # libvirt 11.3's probe of an x86 QEMU (both emulators are installed)
    Mutant('no-pc-probe-type', 'hw/nitro/pc-probe.c',
           'if (!target_aarch64()) {', 'if (false) {',
           ['nitro-libvirt-system/aarch64']),

    # A real enclave's vsock: the backend of NITRO_SIM_BOOT=qemu
    Mutant('vsock-credit-ignored', 'contrib/vhost-user-vsock/vhost-user-vsock.c',
           'return c->peer_buf_alloc - (c->rx_cnt - c->peer_fwd_cnt);',
           'return c->peer_buf_alloc;', [VHOST_VSOCK]),
    Mutant('vsock-no-rst-to-guest',
           'contrib/vhost-user-vsock/vhost-user-vsock.c',
           '        send_rst_for(v, h);\n        return;\n    }\n'
           '    c = conn_new(',
           '        (void)h;\n        return;\n    }\n'
           '    c = conn_new(', [VHOST_VSOCK, BOOT]),
    Mutant('vsock-dials-host-cid',
           'contrib/vhost-user-vsock/vhost-user-vsock.c',
           'vuv_host_connect(&v->cfg, dst_cid, dst_port, src_port,',
           'vuv_host_connect(&v->cfg, v->host_cid, dst_port, src_port,',
           [BOOT]),
    Mutant('vsock-sigpipe', 'contrib/vhost-user-vsock/vhost-user-vsock.c',
           'ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);',
           'ssize_t n = sendmsg(c->fd, &mh, 0);', [VHOST_VSOCK]),
    # The start that waits for the port, a failed boot that QEMU keeps,
    # guest RAM in the address space, the whole monitor
    Mutant('stop-while-the-start-waits', 'accel/nitro/nitro-accel.c',
           '    if (s->start_when_ready) {\n        error_setg(errp, "the enclave '
           'starts',
           '    if (false) {\n        error_setg(errp, "the enclave starts',
           [LIFECYCLE]),
    Mutant('read-while-the-start-waits', 'accel/nitro/nitro-accel.c',
           '    if (s->start_when_ready) {\n        error_setg(errp, "the memory',
           '    if (false) {\n        error_setg(errp, "the memory',
           [LIFECYCLE]),
    Mutant('panic-none-keeps-running', 'accel/nitro/nitro-accel.c',
           '            vm_stop(RUN_STATE_GUEST_PANICKED);',
           '            ;', [LIFECYCLE, OP_MATRIX]),
    Mutant('powerdown-of-stopped-ignored', 'accel/nitro/nitro-accel.c',
           '    if (s->state == NITRO_ENCLAVE_STOPPING) {\n        return;',
           '    if (s->state >= NITRO_ENCLAVE_STOPPING) {\n        return;',
           [LIFECYCLE]),
    Mutant('ram-not-in-address-space', 'hw/nitro/machine.c',
           'memory_region_add_subregion(get_system_memory(), 0, ms->ram);',
           ';', [LIFECYCLE]),
    # qemu-nitro: nitro-cli's JSON
    Mutant('cli-run-json-keys', 'contrib/qemu-nitro/qemu-nitro',
           'RUN_KEYS = DESCRIBE_KEYS[:7]',
           'RUN_KEYS = DESCRIBE_KEYS[:6]', [NITRO_CLI]),

    # Attestation without AWS: virtio-nsm's signature (patch 0091) and
    # qemu-eif verify-attestation
    Mutant('nsm-signs-another-context', 'hw/virtio/virtio-nsm.c',
           'cbor_build_string("Signature1"),',
           'cbor_build_string("Signature"),', [ATTEST]),
    Mutant('verify-nonce-unchecked', 'contrib/qemu-eif/attest-verify.c',
           '    if (e->nonce) {', '    if (false) {', [ATTEST]),
    Mutant('verify-stale-certificate', 'contrib/qemu-eif/attest-verify.c',
           'if (now < from || now > until) {', 'if (false) {', [ATTEST]),

    # The Nitro hypervisor's PCI device: a range that starts below a
    # donated one and runs into it is refused (EEXIST)
    Mutant('ne-pci-overlap-from-below', 'hw/nitro/ne-pci.c',
           'if (paddr < r->paddr + r->size && r->paddr < paddr + size) {',
           'if (paddr < r->paddr + r->size && r->paddr < paddr) {',
           [NE_PCI]),
    # ... and what else it answers a guest
    Mutant('ne-pci-unknown-command-ok', 'hw/nitro/ne-pci.c',
           'return ne_pci_bad(cmd, -EOPNOTSUPP, "unknown command");',
           'return 0;', [NE_PCI]),
    Mutant('ne-pci-release-can-fail', 'hw/nitro/ne-pci.c',
           'if (cmd == NE_CMD_ENCLAVE_STOP || cmd == NE_CMD_SLOT_FREE) {',
           'if (false) {', [NE_PCI]),
    Mutant('ne-pci-start-without-memory', 'hw/nitro/ne-pci.c',
           'if (!slot->ranges->len) {', 'if (false) {', [NE_PCI]),
    Mutant('ne-pci-cid-shared', 'hw/nitro/ne-pci.c',
           '} else if (ne_pci_cid_used(s, cid)) {', '} else if (false) {',
           [NE_PCI]),
    Mutant('ne-pci-stop-unannounced', 'hw/nitro/ne-pci.c',
           '                ne_pci_slot_stop(slot);\n'
           '                ne_pci_event(s);',
           '                ne_pci_slot_stop(slot);', [NE_PCI]),
    Mutant('ne-pci-panic-runs-on', 'hw/nitro/ne-pci.c',
           'if (strstr(slot->line, NE_PANIC_LINE) &&', 'if (false &&',
           [NE_PCI]),

    # ... and the debug console it serves at vsock CID 0, to the end
    Mutant('ne-pci-console-unserved', 'hw/nitro/ne-pci.c',
           'if ((slot->flags & NE_FLAG_DEBUG) && s->console_gateway) {',
           'if (false) {', [NE_PCI]),
    Mutant('console-server-no-eof', 'hw/nitro/console-server.c',
           'if (c->pos == srv->total && srv->listen_fd < 0) {',
           'if (false) {', [NE_PCI]),
    # The console on stdio once stdin has ended
    Mutant('serial-stdio-closed-at-eof', 'hw/nitro/serial-vsock.c',
           'object_dynamic_cast(chr, TYPE_CHARDEV_FD);', 'false;', [VSOCK]),

    # Nitro's stop semantics: a reboot ends the enclave, a stop before
    # the heartbeat is a boot failure
    Mutant('sim-reboot-unseen', 'contrib/nitro-sim/boot.c',
           'reason = "reboot";', '(void)0;', [BOOT]),
    Mutant('death-before-heartbeat-is-a-stop', 'accel/nitro/nitro-accel.c',
           'if (!nitro_listener_booted(s)) {',
           'if (!nitro_listener_booted(s) && false) {', [LIFECYCLE]),
]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=TOP, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


# The fork's own tests, which check.py runs outside meson
FORK = {name: (argv, timeout) for name, argv, timeout in check.FORK_TESTS}


def outputs_of(names):
    """What the tests @names need built, relative to build/obj: [] for
    everything, when one of the fork's own tests is among them"""
    if any(n in FORK for n in names):
        return []
    tests = [t for t in check.introspect('tests') if t['name'] in names]
    missing = set(names) - {t['name'] for t in tests}
    if missing:
        raise SystemExit(f'mutants: no such test: {", ".join(missing)}')
    return check.needed_outputs(tests)


PASS = ('OK', 'EXPECTEDFAIL')


def run_tests(names):
    """{test name: result (OK, SKIP, FAIL, TIMEOUT...)} of the tests
    @names on the tree as it is, one at a time (they share the host's
    huge pages)"""
    results = {name: 'NOT RUN' for name in names}
    for name in set(names) & set(FORK):
        results[name] = check.run_fork_test(name, *FORK[name])['result']
    meson_names = sorted(set(names) - set(FORK))
    if not meson_names:
        return results
    logbase = 'mutants'
    log = check.testlog(logbase, 'thorough')
    if os.path.exists(log):
        os.unlink(log)
    run([MESON, 'test', '-C', OBJ, '--no-rebuild', '--quiet',
         '--setup', 'thorough', '--num-processes', '1',
         '--logbase', logbase] + meson_names,
        env=dict(os.environ, NITRO_CONSOLE_RUNS='20'))
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                test = json.loads(line)
                # "project:suites / name"
                results[test['name'].split(' / ', 1)[-1]] = test['result']
    return results


def baseline(chosen):
    """The tests of the mutants @chosen that pass on the unmutated tree
    (only they can kill a mutant), and {test: result} of the others"""
    names = {t for m in chosen for t in m.tests}
    run(['ninja', '-C', OBJ] + outputs_of(sorted(names)))
    results = run_tests(names)
    return ({t for t, r in results.items() if r in PASS},
            {t: r for t, r in results.items() if r not in PASS})


def check_mutant(m, passing):
    """'killed by ...', 'survived', or 'stale: why'; only the tests of
    @passing (those that pass unmutated) can kill"""
    path = os.path.join(TREE, m.file)
    with open(path) as f:
        text = f.read()
    if text.count(m.old) != 1:
        return f'stale: found {text.count(m.old)} times in {m.file}'
    backup = path + '.mutant-orig'
    shutil.copy2(path, backup)
    try:
        with open(path, 'w') as f:
            f.write(text.replace(m.old, m.new))
        if run(['ninja', '-C', OBJ] + outputs_of(m.tests)).returncode:
            return 'stale: does not build'
        results = run_tests(m.tests)
        killers = [t for t in m.tests
                   if t in passing and results[t] not in PASS + ('SKIP',)]
        return f'killed by {", ".join(killers)}' if killers else 'survived'
    finally:
        # A new mtime, so that the next build compiles the original again
        os.replace(backup, path)
        os.utime(path)


def main():
    args = sys.argv[1:]
    if args[:1] == ['--list']:
        for m in MUTANTS:
            print(f'{m.name:28} {m.file}')
        return 0
    unknown = set(args) - {m.name for m in MUTANTS}
    if unknown:
        print(f'mutants: no such mutant: {", ".join(sorted(unknown))}',
              file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args or m.name in args]
    # An up-to-date tree and build to start from
    subprocess.run([os.path.join(TOP, 'scripts', 'fork', 'build.sh')],
                   check=True)
    t0 = time.monotonic()
    # The tests must pass unmutated: a failure there would "kill" any
    # mutant, so no score can be claimed
    passing, others = baseline(chosen)
    failing = sorted(t for t, r in others.items() if r != 'SKIP')
    for t in sorted(others):
        print(f'unmutated: {t}: {others[t]}' +
              (' (can kill no mutant)' if others[t] == 'SKIP' else ''))
    if failing:
        print('mutants: no score: ' + ', '.join(failing) + ' fail(s) on '
              'the unmutated tree (build/obj/meson-logs/mutants.txt)')
        return 1
    print(f'baseline: {len(passing)} tests pass unmutated '
          f'({time.monotonic() - t0:.0f} s)', flush=True)
    killed, survived, stale = [], [], []
    for m in chosen:
        t = time.monotonic()
        verdict = check_mutant(m, passing)
        print(f'{m.name}: {verdict} ({time.monotonic() - t:.0f} s)',
              flush=True)
        if verdict.startswith('killed'):
            killed.append(m.name)
        elif verdict == 'survived':
            survived.append(m.name)
        else:
            stale.append(m.name)
    # Rebuild what the mutants left behind, from the restored tree
    run(['ninja', '-C', OBJ] +
        outputs_of(sorted({t for m in chosen for t in m.tests})))
    print(f'mutants: {time.monotonic() - t0:.0f} s')
    if survived:
        print('survived: ' + ', '.join(survived))
    if stale:
        print('stale (update the list): ' + ', '.join(stale))
    print(f'{len(killed)} killed, {len(survived)} survived')
    return 1 if survived or stale else 0


if __name__ == '__main__':
    sys.exit(main())
