#!/usr/bin/env python3
"""Run every test of the fork: the meson suite 'nitro'.

Builds only what the selected tests need (meson introspection), runs them
with `meson test`, and ends with the line "N passed, N failed, N skipped":
meson tests that passed or failed, and the skipped ones with the subtests
that the others skipped (TAP "ok N name # SKIP reason"), each skip
printed with its reason.
Exit status 1 when a test failed or when no test ran.

Usage: check.py [--suite SUITE] [meson test arguments...]
"""

import json
import os
import re
import subprocess
import sys

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


def needed_outputs(tests):
    """Build outputs (relative to build/obj) that the tests depend on."""
    by_id = {t['id']: t for t in introspect('targets')}
    outputs = set()
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


def main():
    args = sys.argv[1:]
    suite = 'nitro'
    if args[:1] == ['--suite']:
        suite = args[1]
        args = args[2:]

    subprocess.run([BUILD], check=True)
    tests = [t for t in introspect('tests') if in_suite(t, suite)]
    if not tests:
        print(f'check: no test in suite {suite}', file=sys.stderr)
        print('0 passed, 0 failed, 0 skipped')
        return 1
    subprocess.run([BUILD] + needed_outputs(tests), check=True)

    log = os.path.join(OBJ, 'meson-logs', 'testlog.json')
    if os.path.exists(log):
        os.unlink(log)
    subprocess.run([MESON, 'test', '-C', OBJ, '--no-rebuild',
                    '--print-errorlogs', '--suite', suite] + args)

    counts = {'passed': 0, 'failed': 0, 'skipped': 0}
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                test = json.loads(line)
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
