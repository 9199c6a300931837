import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderClusterStatus } from './cluster-status.js';

test('cluster status renders the nodes, the database and the hosts per node', () => {
  const text = renderClusterStatus({
    nodes: [
      {
        name: 'a',
        address: 'http://a:8080',
        version: '0.1.0',
        state: 'Running',
        heartbeatAt: 'T1',
        runningJobs: 2,
        ownedHosts: 1,
      },
      {
        name: 'b',
        address: 'http://b:8080',
        version: '0.1.0',
        state: 'Stopped',
        heartbeatAt: 'T0',
        runningJobs: 0,
        ownedHosts: 0,
      },
    ],
    database: {
      serverVersion: '18.4',
      role: 'primary',
      sizeBytes: 3 * 2 ** 20,
      replayLagSeconds: null,
      replicas: [{ name: 'standby1', address: '10.0.0.9', state: 'streaming', replayLagSeconds: 0.25 }],
    },
    ownership: [{ node: 'a', hosts: ['h1'] }],
  });
  const lines = text.split('\n');
  assert.match(lines[0]!, /^NODE\s+ADDRESS\s+VERSION\s+STATE\s+HEARTBEAT\s+RUNNING JOBS\s+HOSTS$/);
  assert.match(lines[1]!, /^a\s+http:\/\/a:8080\s+0\.1\.0\s+Running\s+T1\s+2\s+1$/);
  assert.match(lines[2]!, /^b\s+.*Stopped/);
  assert.ok(text.includes('database: PostgreSQL 18.4, primary, 3.0 MiB'), text);
  assert.match(text, /standby1\s+10\.0\.0\.9\s+streaming\s+0\.3s/);
  assert.match(text, /\na\s+h1$/);
});
