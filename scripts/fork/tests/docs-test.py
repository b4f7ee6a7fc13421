#!/usr/bin/env python3
#
# The documentation builds: QEMU's manual (docs/, with its conf.py and
# extensions, the QAPI reference included) with Debian's Sphinx, and our
# pages have no warning: the overlay's pages under docs/ and every file
# that patches/ changes.  Warnings elsewhere in QEMU's manual are shown,
# not counted: they depend on the Sphinx version.  Our pages are checked
# in the HTML too: every line of the domain XML that docs/system/nitro.rst
# includes is there (literalinclude paths), and the system manual's index
# links the page.
#
# Usage: docs-test.py, with QEMU_BUILD_ROOT set (the fork's build/obj: the
# source tree is build/tree, the checkout two levels up).  TAP output.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import glob
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

from taptest import Tap

tap = Tap()


def our_files(top, tree):
    """Overlay files and the files that patches/ changes, tree-relative."""
    ours = set()
    with open(os.path.join(tree, '.fork-overlay')) as f:
        ours.update(line.strip() for line in f if line.strip())
    for p in glob.glob(os.path.join(top, 'patches', '*.patch')):
        with open(p) as f:
            ours.update(m.group(1) for m in
                        re.finditer(r'(?m)^\+\+\+ b/(\S+)', f.read()))
    return ours


def text_of(path):
    with open(path, encoding='utf-8') as f:
        text = re.sub(r'<[^>]+>', '', f.read())
    return ' '.join(html.unescape(text).split())


def main():
    obj = os.environ['QEMU_BUILD_ROOT']
    tree = os.path.join(os.path.dirname(obj), 'tree')
    top = os.path.dirname(os.path.dirname(obj))
    with open(os.path.join(tree, 'VERSION')) as f:
        version = f.read().strip()

    try:
        import sphinx  # noqa: F401
        import sphinx_rtd_theme  # noqa: F401
    except ImportError as e:
        tap(False, 'Sphinx and its Read the Docs theme are installed',
            f'{e}: install python3-sphinx and python3-sphinx-rtd-theme '
            '(scripts/fork/deps.sh does, as root)')
        return tap.plan()

    out = tempfile.mkdtemp(prefix='nitro-docs-')
    try:
        cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q',
               '-d', os.path.join(out, 'doctrees'),
               '-D', f'version={version}', '-D', f'release={version}',
               os.path.join(tree, 'docs'), os.path.join(out, 'html')]
        env = dict(os.environ, CONFDIR='/usr/local/etc/qemu')
        res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True,
                             text=True, timeout=1500)
        tap(res.returncode == 0, "QEMU's manual builds with Sphinx",
            res.stderr[-3000:])

        ours = our_files(top, tree)
        mine, others = [], []
        for line in res.stderr.splitlines():
            m = re.match(r'(\S+?):(\d+:)?\s*(WARNING|ERROR|CRITICAL)', line)
            if not m:
                continue
            path = os.path.relpath(os.path.abspath(
                os.path.join(tree, m.group(1))), tree)
            (mine if path in ours else others).append(line)
        tap(not mine, 'no warning in our pages (warnings are errors there)',
            '\n'.join(mine))
        if others:
            print(f'# {len(others)} warnings in QEMU\'s own pages:')
            for line in others[:20]:
                print(f'#   {line}')

        page = os.path.join(out, 'html', 'system', 'nitro.html')
        text = text_of(page) if os.path.exists(page) else ''
        for xml in sorted(glob.glob(os.path.join(tree, 'docs', 'system',
                                                 'nitro-domain-*.xml'))):
            with open(xml) as f:
                lines = [' '.join(ln.split()) for ln in f if ln.strip()]
            missing = [ln for ln in lines if ln not in text]
            tap(bool(text) and not missing,
                f'system/nitro.html includes {os.path.basename(xml)}',
                'missing lines:\n' + '\n'.join(missing[:10]))

        index = os.path.join(out, 'html', 'system', 'index.html')
        with open(index) as f:
            linked = 'href="nitro.html"' in f.read()
        tap(linked, 'the system emulation index links system/nitro.html')
    finally:
        shutil.rmtree(out, ignore_errors=True)

    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
