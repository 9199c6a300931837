import assert from 'node:assert/strict';
import { test } from 'node:test';
import { POWER_STATES, TRANSITIONAL_STATES, VM_STATES } from '../../kernel/vm-states.js';
import { GONE_STATES, novaState, POWER, statesOfStatus } from './server-state.js';

const NOVA_STATUSES = [
  'ACTIVE',
  'BUILD',
  'DELETED',
  'ERROR',
  'MIGRATING',
  'PAUSED',
  'REBOOT',
  'REBUILD',
  'SHUTOFF',
  'UNKNOWN',
];

test('every Nimbus state maps to a Nova status and vm_state; transitional ones name a task', () => {
  for (const state of VM_STATES) {
    const s = novaState({ state, task: null, powerState: 'Running' });
    assert.ok(NOVA_STATUSES.includes(s.status), `${state} → ${s.status}`);
    assert.ok(s.vmState.length > 0);
    if (TRANSITIONAL_STATES.includes(state)) assert.notEqual(s.taskState, null, `${state} has a task_state`);
    else assert.equal(s.taskState, null, `${state} has no task_state`);
  }
});

test('the states clients wait for', () => {
  assert.deepEqual(novaState({ state: 'Running', task: null, powerState: 'Running' }), {
    status: 'ACTIVE',
    vmState: 'active',
    taskState: null,
    powerState: POWER.RUNNING,
  });
  assert.equal(novaState({ state: 'Stopped', task: null, powerState: 'Stopped' }).status, 'SHUTOFF');
  assert.equal(novaState({ state: 'Creating', task: 'create', powerState: 'NoState' }).status, 'BUILD');
  assert.equal(
    novaState({ state: 'Stopping', task: 'stop', powerState: 'Running' }).taskState,
    'powering-off',
  );
  // an operation without a state of its own shows as Nova's task (a rebuild as REBUILD)
  const rebuild = novaState({ state: 'Stopped', task: 'rebuild', powerState: 'Stopped' });
  assert.deepEqual([rebuild.status, rebuild.taskState], ['REBUILD', 'rebuilding']);
});

test('every hypervisor report is a Nova power_state code', () => {
  const codes = POWER_STATES.map(
    (p) => novaState({ state: 'Running', task: null, powerState: p }).powerState,
  );
  assert.deepEqual(codes, [POWER.RUNNING, POWER.SHUTDOWN, POWER.PAUSED, POWER.NOSTATE, POWER.CRASHED]);
});

test('the status filter covers exactly the states showing that status', () => {
  for (const status of NOVA_STATUSES.filter((s) => s !== 'REBUILD')) {
    for (const state of statesOfStatus(status))
      assert.equal(novaState({ state, task: null, powerState: 'NoState' }).status, status);
  }
  assert.deepEqual(statesOfStatus('shutoff').sort(), ['Starting', 'Stopped']);
  assert.deepEqual(GONE_STATES, statesOfStatus('DELETED'));
});
