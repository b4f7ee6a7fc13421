#!/usr/bin/env python3
"""Add file patterns to a section of QEMU's MAINTAINERS file.

    maintainers-section.py MAINTAINERS TITLE AFTER MAINTAINER PATTERN...

Adds "F: PATTERN" lines to the section TITLE (kept sorted, without
duplicates).  When there is no such section yet, it is created right
after the section AFTER, with "M: MAINTAINER" and "S: Maintained".
Used by export-patches.sh, so that every commit of the exported series
that adds files also says who maintains them.
"""

import sys


def sections(lines):
    """Split MAINTAINERS into (start, end) line ranges of its sections.

    A section is a title line followed by "X: value" lines, up to the
    next empty line.
    """
    result = []
    i = 0
    while i < len(lines):
        if (i + 1 < len(lines) and lines[i].strip() and
                lines[i + 1][:2] in ('M:', 'R:', 'L:', 'S:', 'F:')):
            end = i + 1
            while end < len(lines) and lines[end].strip():
                end += 1
            result.append((i, end))
            i = end
        else:
            i += 1
    return result


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    path, title, after, maintainer = sys.argv[1:5]
    patterns = sys.argv[5:]
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')

    found = {lines[s].rstrip(): (s, e) for s, e in sections(lines)}
    if title not in found:
        if after not in found:
            sys.exit(f'maintainers-section: no section "{after}" in {path}')
        end = found[after][1]
        lines[end:end] = ['', title, f'M: {maintainer}', 'S: Maintained']
        found = {lines[s].rstrip(): (s, e) for s, e in sections(lines)}

    start, end = found[title]
    body = lines[start + 1:end]
    files = sorted(set([ln for ln in body if ln.startswith('F:')] +
                       [f'F: {p}' for p in patterns]))
    others = [ln for ln in body if not ln.startswith('F:')]
    lines[start + 1:end] = others + files

    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


if __name__ == '__main__':
    main()
