/*
 * QTest: the fork's emulators are the pinned QEMU base
 *
 * Starts the emulator with "-machine none" and checks that QMP
 * query-version reports the version of the QEMU base the overlay was
 * built on (passed by the build as NITRO_BASE_VERSION, from base.conf).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"

static void test_query_version(void)
{
    const char *want = g_getenv("NITRO_BASE_VERSION");
    QTestState *qts;
    QDict *rsp, *ret, *qemu;
    g_autofree char *got = NULL;

    g_assert_nonnull(want);
    qts = qtest_init("-machine none");
    rsp = qtest_qmp(qts, "{ 'execute': 'query-version' }");
    ret = qdict_get_qdict(rsp, "return");
    g_assert_nonnull(ret);
    qemu = qdict_get_qdict(ret, "qemu");
    g_assert_nonnull(qemu);
    got = g_strdup_printf("%" PRId64 ".%" PRId64 ".%" PRId64,
                          qdict_get_int(qemu, "major"),
                          qdict_get_int(qemu, "minor"),
                          qdict_get_int(qemu, "micro"));
    g_assert_cmpstr(got, ==, want);
    qobject_unref(rsp);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/nitro/version/query-version", test_query_version);
    return g_test_run();
}
