#!/usr/bin/env python3
#
# Every QMP and every HMP command, bare and with typical arguments, on an
# enclave of the Nitro Enclaves simulator in each of its states: prelaunch
# (-S), running, and stopped (a failed boot kept by -action panic=pause).
# The test fails on a crash, a command that does not answer, a state that
# is not true (QEMU's status against the enclave's), and a success that
# did not do what the command claims (stop, cont, qom-set).
#
# Typical QMP arguments come from the command's schema (query-qmp-schema),
# typical HMP arguments from its "help" line: a value of the right kind
# for each parameter, files in the test's scratch directory.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import re

from qemu_test.nitro import DEADLINE, NitroTest

# The enclave's state that goes with each of QEMU's
TRUE_STATES = {
    'prelaunch': 'prepared',
    'running': 'running',
    'guest-panicked': 'stopped',
}

# Commands that end QEMU or leave the state under test (their own tests
# cover them), and the monitor inside the monitor
LEAVE = {'quit', 'q', 'system_powerdown', 'cont', 'c', 'x-exit-preconfig',
         'exit_preconfig', 'human-monitor-command'}

# Typical values by parameter name (QMP names and HMP help words)
BY_NAME = {
    'val': 0x800000, 'addr': '0x800000', 'address': 0x800000,
    'size': 4096, 'calc-time': 1, 'calc_time': 1, 'path': '/machine',
    'property': 'enclave-cid', 'name': 'nitro', 'id': 'x', 'uri':
    'exec:cat >/dev/null', 'protocol': 'file:{scratch}', 'typename':
    'nitro-heartbeat', 'driver': 'nitro-heartbeat', 'qom-type':
    'memory-backend-ram', 'device': 'x', 'node-name': 'x', 'tag': 'snap',
    'job-id': 'job0', 'fmt': '/4xb', 'count': 1, 'index': 0, 'cpu': 0,
    'cpu-index': 0, 'value': 1,
}
FILE_WORDS = ('file', 'filename', 'fname')


class NitroOpMatrix(NitroTest):

    def launch_in(self, state):
        if state == 'guest-panicked':
            self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        self.launches = getattr(self, 'launches', 0) + 1
        vm = self._new_vm(f'{state}{self.launches}')
        # a failed check leaves no QEMU behind (a no-op once it ended)
        self.addCleanup(vm.shutdown, hard=True)
        vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                    '-m', '128M', '-kernel', self.make_eif(),
                    '-display', 'none', '-action', 'panic=pause')
        if state == 'prelaunch':
            vm.add_args('-S')
        vm.launch()
        # A command that hangs fails the test instead of blocking it
        vm._qmp.settimeout(DEADLINE)
        self.wait_for(lambda: vm.cmd('query-status')['status'] == state)
        if state == 'running':
            self.wait_for(lambda: self.heartbeats('ok'))
        return vm

    # Typical QMP arguments, from the schema

    def qmp_value(self, name, typ, types, depth):
        info = types.get(typ, {})
        kind = info.get('meta-type')
        if kind == 'builtin':
            kind = {'string': 'str', 'int': 'int', 'number': 'number',
                    'boolean': 'bool', 'value': 'any'}.get(info['json-type'])
        typical = BY_NAME.get(name)
        if kind == 'str' and name in FILE_WORDS:
            return self.scratch_file('qmp-' + name)
        if kind in ('str', 'any') and isinstance(typical, str):
            return typical.format(scratch=self.scratch_file('qmp-' + name))
        if kind in ('int', 'any') and isinstance(typical, int):
            return typical
        if kind == 'enum':
            members = info.get('members') or info.get('values')
            first = members[0]
            return first['name'] if isinstance(first, dict) else first
        if kind == 'object' and depth < 2:
            return self.qmp_args(typ, types, depth + 1)
        return {'str': 'x', 'any': 'x', 'int': 1, 'number': 1.0,
                'bool': True, 'array': []}.get(kind)

    def qmp_args(self, typ, types, depth=0):
        args = {}
        for member in types.get(typ, {}).get('members', []):
            if 'default' in member:
                continue  # optional
            value = self.qmp_value(member['name'], member['type'], types,
                                   depth)
            if value is None:
                return None
            args[member['name']] = value
        return args

    def qmp_calls(self, vm):
        schema = vm.cmd('query-qmp-schema')
        types = {t['name']: t for t in schema}
        for t in schema:
            if t['meta-type'] != 'command' or t['name'] in LEAVE:
                continue
            yield t['name'], {}
            args = self.qmp_args(t['arg-type'], types)
            if args:
                yield t['name'], args

    # Typical HMP arguments, from "help"

    def hmp_word(self, word):
        word = re.split(r'[\[\],=|]', word)[0]
        if word.startswith('/'):
            return '/4xb'
        if word in FILE_WORDS:
            return self.scratch_file('hmp-' + word)
        value = BY_NAME.get(word, 'x' if word.isalpha() else '1')
        return str(value).format(scratch=self.scratch_file('hmp-' + word))

    def hmp_calls(self, vm):
        """HMP command lines: each command, and each info subcommand"""
        lines = []
        for topic in ('help', 'help info'):
            lines += vm.cmd('human-monitor-command',
                            command_line=topic).splitlines()
        for line in lines:
            m = re.match(r'(info \S+|\S+)\s*(.*?)\s+--', line)
            if not m or m.group(1) == 'info':
                continue
            names = m.group(1).split('|')
            if any(n in LEAVE for n in names):
                continue
            yield names[0]
            words = [w for w in m.group(2).split() if not w.startswith('[')]
            if words:
                yield ' '.join([names[0]] + [self.hmp_word(w)
                                             for w in words])

    # What must hold after each command

    def check_true(self, vm, state, what):
        status = vm.cmd('query-status')['status']
        enclave = vm.cmd('qom-get', path='/machine', property='enclave-state')
        self.assertEqual(status, state, what)
        self.assertEqual(enclave, TRUE_STATES[state], what)

    def check_claim(self, vm, state, name, args, ok, what):
        if not ok:
            return
        self.assertFalse(name == 'stop' and state == 'running',
                         f'{what}: an enclave cannot pause')
        if name == 'qom-set':
            got = vm.qmp('qom-get', path=args['path'],
                         property=args['property'])
            self.assertEqual(got.get('return'), args['value'], what)

    def send(self, vm, state, what, call):
        """call(vm), then the checks; a crash is recorded, not final"""
        try:
            result = call(vm)
        except Exception as e:  # noqa: BLE001 - a crash or a hang
            vm.shutdown(hard=True)
            log = vm.get_log() or ''
            self.crashes.append(f'{what}: {e!r}, exit {vm.exitcode()}: '
                                f'{log[-300:]}')
            return None
        self.check_true(vm, state, what)
        return result

    def run_matrix(self, state):
        self.crashes = []
        vm = self.launch_in(state)
        self.check_true(vm, state, 'launch')
        sent = 0
        for name, args in list(self.qmp_calls(vm)):
            what = f'{state}: QMP {name} {args}'
            res = self.send(vm, state, what,
                            lambda v: v.qmp(name, args_dict=args))
            if res is None:
                vm = self.launch_in(state)
                continue
            self.assertTrue('return' in res or 'error' in res, what)
            self.check_claim(vm, state, name, args, 'return' in res, what)
            sent += 1
        for line in list(self.hmp_calls(vm)):
            what = f'{state}: HMP {line}'
            out = self.send(vm, state, what,
                            lambda v: v.cmd('human-monitor-command',
                                            command_line=line))
            if out is None:
                vm = self.launch_in(state)
                continue
            if line == 'stop' and state == 'running':
                self.assertIn('cannot be paused', out, what)
            sent += 1
        self.log.info('%s: %d commands', state, sent)
        self.assertEqual(self.crashes, [], '\n'.join(self.crashes))
        self.assertGreater(sent, 300)
        vm.cmd('quit')
        vm.wait(timeout=DEADLINE)
        self.assertEqual(vm.exitcode(), 0)

    def test_prelaunch(self):
        self.run_matrix('prelaunch')

    def test_running(self):
        self.run_matrix('running')

    def test_stopped(self):
        self.run_matrix('guest-panicked')


if __name__ == '__main__':
    NitroTest.main()
