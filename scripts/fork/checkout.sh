# Sourced by the fork's scripts, with $top set to the directory they run
# from.  The mirror that build.sh makes of a checkout whose path has a
# space (tests run `make install` there) names the checkout it mirrors in
# .nitro-mirror-of: that checkout is the one to build and export.
#
# SPDX-License-Identifier: GPL-2.0-or-later

if [ -f "$top/.nitro-mirror-of" ]; then
    top=$(cat "$top/.nitro-mirror-of")
fi
