/**
 * Host-level scenarios: what host.connect / host.capacity / host.ping answer, an unknown command,
 * and malformed bodies (every one refused as Invalid naming the bad field, nothing changed).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { namesField, ok, refused } from './host-under-test.js';
import type { SuiteContext } from './suite.js';

const positiveInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const text = (v: unknown) => typeof v === 'string' && v.length > 0;

export function hostScenarios(ctx: SuiteContext, timeout: number): void {
  test('host.connect, host.capacity and host.ping answer their shapes', { timeout }, async () => {
    const host = ctx.host();
    const facts = await ok(host, 'host.connect', {});
    for (const field of ['hypervisorType', 'hypervisorVersion', 'hostname', 'cpuModel'])
      assert.ok(text(facts[field]), `host.connect.${field}: ${JSON.stringify(facts[field])}`);
    if (facts.accelerator !== undefined) assert.ok(['kvm', 'tcg'].includes(facts.accelerator as string));
    const capacity = await ok(host, 'host.capacity', {});
    assert.ok(positiveInt(capacity.cpu), `cpu ${capacity.cpu}`);
    assert.ok(positiveInt(capacity.memory), `memory ${capacity.memory}`);
    if (capacity.disk !== undefined) assert.ok(positiveInt(capacity.disk), `disk ${capacity.disk}`);
    const ping = await ok(host, 'host.ping', {});
    assert.ok(Number.isSafeInteger(ping.uptimeSeconds) && (ping.uptimeSeconds as number) >= 0);
  });

  test('a command the host does not know: NotFound AGENT_COMMAND_UNKNOWN', { timeout }, async () => {
    const err = await refused(ctx.host(), 'vm.fly', { vmUuid: randomUUID() });
    assert.equal(err.reason, 'NotFound');
    assert.equal(err.code, 'AGENT_COMMAND_UNKNOWN');
  });

  test('malformed bodies: Invalid, naming the field', { timeout }, async () => {
    const host = ctx.host();
    const vmUuid = randomUUID();
    const storage = host.fixtures.storage;
    const cases: Array<[command: string, body: unknown, field: string]> = [
      ['vm.start', {}, 'vm'],
      ['vm.start', { vm: 'x' }, 'vm'],
      [
        'vm.start',
        { vm: { uuid: 7, name: 'v', cpu: 1, memory: 64 << 20, volumes: [], nics: [] } },
        'vm.uuid',
      ],
      [
        'vm.start',
        { vm: { uuid: vmUuid, name: 'v', cpu: 0, memory: 64 << 20, volumes: [], nics: [] } },
        'vm.cpu',
      ],
      [
        'vm.start',
        { vm: { uuid: vmUuid, name: 'v', cpu: 1, memory: 1000, volumes: [], nics: [] } },
        'vm.memory',
      ],
      ['vm.start', { vm: { uuid: vmUuid, name: 'v', cpu: 1, memory: 64 << 20, nics: [] } }, 'vm.volumes'],
      ['vm.stop', { force: true }, 'vmUuid'],
      ['vm.destroy', { vmUuid: '../etc' }, 'vmUuid'],
      ['vm.pause', { vmUuid: 12 }, 'vmUuid'],
      ['vm.serial-log', { tailBytes: 10 }, 'vmUuid'],
      ['vm.attach-volume', { vmUuid }, 'volume'],
      ['vm.detach-volume', { vmUuid }, 'volumeUuid'],
      ['vm.attach-nic', { vmUuid, nic: [] }, 'nic'],
      ['vm.detach-nic', { vmUuid, nicUuid: '' }, 'nicUuid'],
      ['network.ensure-bridges', { bridges: [] }, 'version'],
      ['dhcp.set-entries', { version: 0, networks: [] }, 'version'],
      ['sg.apply', { version: 1.5, nics: [] }, 'version'],
      ['router.apply-config', { version: 'new', config: {} }, 'version'],
      ['router.apply-config', { version: ctx.version() }, 'config'],
      ['router.status', {}, 'routerUuid'],
      ['network.ensure-bridges', { version: ctx.version(), bridges: 'br0' }, 'bridges'],
      ['dhcp.set-entries', { version: ctx.version(), networks: {} }, 'networks'],
      ['sg.apply', { version: ctx.version() }, 'nics'],
      ['volume.create', { volumeUuid: randomUUID(), size: 1 << 20, format: 'qcow2' }, 'storage.type'],
      ['volume.create', { volumeUuid: '../x', size: 1 << 20, format: 'qcow2', storage }, 'volumeUuid'],
      [
        'image.cache',
        { imageUuid: randomUUID(), url: host.fixtures.image.url, size: 1, storage: {} },
        'storage.type',
      ],
      ['image.cache', { imageUuid: 'a/b', url: host.fixtures.image.url, size: 1, storage }, 'imageUuid'],
      ['volume.delete', { volumeUuid: '', storage }, 'volumeUuid'],
      [
        'image.cache',
        { imageUuid: randomUUID(), url: host.fixtures.image.url, size: 1, storage, sha256: 'ab' },
        'sha256',
      ],
    ];
    const wrong: string[] = [];
    for (const [command, body, field] of cases) {
      const out = await host.send(command, body);
      const why = out.ok
        ? 'succeeded'
        : out.error.reason !== 'Invalid'
          ? out.error.reason
          : 'field not named';
      if (out.ok || out.error.reason !== 'Invalid' || !namesField(out.error, field)) {
        wrong.push(`${command} ${JSON.stringify(body)} (want ${field}): ${why} ${JSON.stringify(out)}`);
      }
    }
    assert.deepEqual(wrong, [], `refused otherwise than Invalid naming the field:\n${wrong.join('\n')}`);
    // none of them made anything: the VM named in the vm.start cases is not on the host
    const list = await ok<{ vms: Array<{ uuid: string }> }>(host, 'vm.list', {});
    assert.equal(
      list.vms.some((v) => v.uuid === vmUuid),
      false,
    );
  });
}
