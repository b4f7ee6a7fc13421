#!/usr/bin/env python3
"""Run every test of the fork.

The fork's tests are of two kinds.  Those of the QEMU tree are meson
tests, registered where QEMU registers its own (tests/unit, tests/qtest,
tests/functional) or in the meson suite 'nitro' (the tools of contrib/
and what they run, tests/nitro): every meson test whose name says nitro
or EIF, those of the suite 'nitro', and QEMU's own generic qtests on the
fork's emulators.  The fork's machinery - its install, manual, exported
series and version pin - is tested by scripts/fork/tests/, which this
script runs itself after the meson tests.

Builds only what the selected meson tests need (meson introspection),
runs them with `meson test`, then the fork's tests, and ends with the
line "N passed, N failed, N skipped": tests that passed or failed, and
the skipped ones with the subtests that the others skipped (TAP "ok N
name # SKIP reason"), each skip printed with its reason.
Exit status 1 when a test failed or when no test ran.

Usage: check.py [--suite SUITE] [meson test arguments...]
SUITE: a meson suite (only its tests), or 'fork' (only the fork's own).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJ = os.path.join(TOP, 'build', 'obj')
BUILD = os.path.join(TOP, 'scripts', 'fork', 'build.sh')
MESON = os.path.join(OBJ, 'pyvenv', 'bin', 'meson')


def introspect(what):
    out = subprocess.run([MESON, 'introspect', '--' + what, OBJ],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def in_suite(test, suite):
    # meson reports suites as "project:suite" or "suite"
    return any(s == suite or s.endswith(':' + suite) for s in test['suite'])


# The meson tests of the fork outside its suite: named after what they
# test, and QEMU's generic machine and device loops on our emulators
FORK_MESON_TEST = re.compile(
    r'nitro|eif|^qtest-(x86_64|aarch64)/(qom-test|device-introspect-test)$')


def fork_meson_tests(suite):
    """The meson tests of @suite, or of the fork when @suite is None"""
    if suite:
        return [t for t in introspect('tests') if in_suite(t, suite)]
    return [t for t in introspect('tests')
            if in_suite(t, 'nitro') or FORK_MESON_TEST.search(t['name'])]


# What the functional tests of the nitro accelerator run besides the
# emulator (QEMU's functional tests depend on the emulator only): meson
# target names
FUNCTIONAL_NEEDS = ('nitro-sim', 'nitro-sim-launch', 'qemu-eif',
                    'vhost-user-vsock')


def needed_outputs(tests):
    """Build outputs (relative to build/obj) that the tests depend on."""
    by_id = {t['id']: t for t in introspect('targets')}
    outputs = set()
    if any(t['name'].startswith('func-') and 'nitro' in t['name']
           for t in tests):
        for target in by_id.values():
            if target['name'] in FUNCTIONAL_NEEDS:
                outputs.update(target['filename'])
    for test in tests:
        for dep in test['depends']:
            target = by_id.get(dep)
            if target:
                outputs.update(target['filename'])
        exe = test['cmd'][0]
        for target in by_id.values():
            if exe in target['filename']:
                outputs.update(target['filename'])
    # build/ may be a link (made by the build, for a checkout whose path
    # has a space): meson names the outputs under its real path
    return sorted(os.path.relpath(o, os.path.realpath(OBJ)) for o in outputs)


# A TAP result line with a SKIP directive: "ok 3 name # SKIP reason"
TAP_SKIP = re.compile(r'^ok\s+\d*\s*(?:-\s*)?(.*?)\s*#\s*skip\S*\s*(.*)$',
                      re.IGNORECASE)


def skipped_subtests(stdout):
    """(subtest, reason) of each TAP result of @stdout that was skipped"""
    found = []
    for line in stdout.splitlines():
        m = TAP_SKIP.match(line.strip())
        if m:
            found.append((m.group(1) or 'a subtest',
                          m.group(2) or 'no reason given'))
    return found


# The fork's own tests (scripts/fork/tests/): name, command line there,
# timeout in seconds.  Each runs alone, after the meson tests.
FORK_TESTS = [
    ('nitro-version', ['version-test.py'], 60),
    ('nitro-install', ['install-test.py'], 900),
    ('nitro-docs', ['docs-test.py'], 1500),
    ('nitro-series', ['series-test.sh'], 900),
    ('nitro-libvirt-system/x86_64', ['libvirt-system-test.py', 'x86_64'],
     1200),
    ('nitro-libvirt-system/aarch64', ['libvirt-system-test.py', 'aarch64'],
     1200),
]


def run_fork_test(name, argv, timeout):
    """Run one of FORK_TESTS; its result as a line of meson's testlog"""
    # build/ may be a link to the mirror of a checkout whose path has a
    # space (build.sh): run there, as meson does
    obj = os.path.realpath(OBJ)
    top = os.path.dirname(os.path.dirname(obj))
    tree = os.path.join(top, 'build', 'tree')
    env = dict(os.environ,
               QEMU_BUILD_ROOT=obj,
               QEMU_TEST_QEMU_BINARY=os.path.join(obj, 'qemu-system-x86_64'),
               NITRO_SIM_LIB=os.path.join(obj, 'contrib', 'nitro-sim',
                                          'libnitro-sim.so'),
               QEMU_EIF=os.path.join(obj, 'contrib', 'qemu-eif', 'qemu-eif'),
               PYTHONPATH=':'.join(os.path.join(tree, d) for d in
                                   ('python', 'tests/functional',
                                    'tests/nitro')))
    script = os.path.join(top, 'scripts', 'fork', 'tests', argv[0])
    # Python: the build's venv, as meson's tests have it
    python = os.path.join(obj, 'pyvenv', 'bin', 'python3')
    cmd = [python if script.endswith('.py') else 'bash', script]
    proc = subprocess.Popen(cmd + argv[1:], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f'\ncheck: {name} timed out after {timeout} s'
        rc = None
    lines = [ln.strip() for ln in out.splitlines()]
    if rc == 77 or any(re.match(r'1\.\.0\s*#\s*skip', ln, re.IGNORECASE)
                       for ln in lines):
        result = 'SKIP'
    elif rc == 0 and not any(ln.startswith(('not ok', 'Bail out!'))
                             for ln in lines):
        result = 'OK'
    else:
        result = 'FAIL'
    return {'name': name, 'result': result, 'stdout': out}


def testlog(logbase, setup=None):
    """The testlog of `meson test --logbase @logbase [--setup @setup]`:
    meson adds the setup's name to it"""
    return os.path.join(OBJ, 'meson-logs', logbase +
                        (f'-{setup}' if setup else '') + '.json')


def run_meson_tests(tests, args):
    """Run @tests with `meson test`; their lines of meson's testlog.

    QEMU registers its functional tests as parallel ones; ours share the
    host's huge pages, so they run one at a time, then the others.  The
    real-boot one is a thorough test (it downloads a kernel), which only
    meson's "thorough" setup runs."""
    subprocess.run([BUILD] + needed_outputs(tests), check=True)
    results = []
    functional = [t['name'] for t in tests if t['name'].startswith('func-')]
    others = [t['name'] for t in tests if not t['name'].startswith('func-')]
    for logbase, setup, names, opts in (
            ('check-functional', 'thorough', functional,
             ['--num-processes', '1']),
            ('check', None, others, [])):
        if not names:
            continue
        log = testlog(logbase, setup)
        if os.path.exists(log):
            os.unlink(log)
        if setup:
            opts = ['--setup', setup] + opts
        subprocess.run([MESON, 'test', '-C', OBJ, '--no-rebuild',
                        '--print-errorlogs', '--logbase', logbase] +
                       opts + args + names)
        if os.path.exists(log):
            with open(log) as f:
                results += [json.loads(line) for line in f]
        else:
            # a meson that ran nothing: each test counts as failed
            results += [{'name': n, 'result': 'NOT RUN'} for n in names]
    return results


def run_fork_tests():
    results = []
    for i, (name, argv, timeout) in enumerate(FORK_TESTS, 1):
        start = time.monotonic()
        res = run_fork_test(name, argv, timeout)
        print(f'{i}/{len(FORK_TESTS)} {name} {res["result"]} '
              f'{time.monotonic() - start:.1f}s', flush=True)
        if res['result'] == 'FAIL':
            print('\n'.join(res['stdout'].splitlines()[-200:]), flush=True)
        results.append(res)
    return results


def main():
    args = sys.argv[1:]
    suite = None
    if args[:1] == ['--suite']:
        suite = args[1]
        args = args[2:]

    subprocess.run([BUILD], check=True)
    results = []
    if suite != 'fork':
        tests = fork_meson_tests(suite)
        if not tests:
            print(f'check: no test in suite {suite}', file=sys.stderr)
            print('0 passed, 0 failed, 0 skipped')
            return 1
        results += run_meson_tests(tests, args)
    if suite in (None, 'fork'):
        results += run_fork_tests()

    counts = {'passed': 0, 'failed': 0, 'skipped': 0}
    for test in results:
        result = test['result']
        if result in ('OK', 'EXPECTEDFAIL'):
            counts['passed'] += 1
        elif result == 'SKIP':
            counts['skipped'] += 1
            # the reason, for CI's output
            why = [ln for ln in (test.get('stdout') or '').splitlines()
                   if 'SKIP' in ln]
            print(f"SKIP {test['name']}: "
                  f"{why[-1] if why else 'no reason given'}")
            continue
        else:
            counts['failed'] += 1
        # the subtests that a test which ran skipped, with why
        for sub, why in skipped_subtests(test.get('stdout') or ''):
            counts['skipped'] += 1
            print(f"SKIP {test['name']}: {sub}: {why}")
    print(f"{counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    if counts['failed'] or not counts['passed']:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
