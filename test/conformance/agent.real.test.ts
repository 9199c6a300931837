// The conformance suite against a real nimbus-agent (part of `npm run test:real`): the bundled
// agent in a network namespace of its own with a unique --name-prefix, real QEMU guests (TCG)
// booted from the cached test guest image, uplinks made of veth pairs. The same scenarios as
// simulator.test.ts; a scenario never runs more than one guest at a time.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorBody } from '../../src/kernel/errors.js';
import { type Agent, Lab, skipReason } from '../real/agent-harness.js';
import { ensureGuestImage } from '../support/guest-image.js';
import type { HostUnderTest, Outcome } from './host-under-test.js';
import { conformanceSuite } from './suite.js';

function skip(): string | false {
  const base = skipReason();
  if (base) return base;
  for (const tool of ['dnsmasq', 'nft'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing`;
  return false;
}

const skipped = skip();
if (skipped) console.log(`# skipping the agent conformance run: ${skipped}`);

let lab: Lab | undefined;

conformanceSuite('nimbus-agent', {
  skip: skipped,
  timeoutMs: 600_000,
  async setup(): Promise<HostUnderTest> {
    const image = await ensureGuestImage();
    lab = new Lab();
    const agent: Agent = lab.agent(17170 + Math.floor(Math.random() * 800), `c${lab.tag.slice(0, 4)}`);
    await agent.start();
    // two uplinks for the no-vlan bridges: veth pairs whose far ends stay in the lab namespace
    for (const [a, b] of [
      ['cgu0', 'cgu1'],
      ['cpu0', 'cpu1'],
    ]) {
      lab.inNs('ip', 'link', 'add', a!, 'type', 'veth', 'peer', 'name', b!);
      lab.inNs('ip', 'link', 'set', b!, 'up');
    }
    const storageDir = join(lab.dir, 'ps');
    mkdirSync(storageDir);
    /** where each VM's serial log stood when it was last started: guestReady reads from there */
    const marks = new Map<string, number>();
    return {
      kind: 'agent',
      fixtures: {
        image: { url: `file://${image.disk}` },
        storage: { uuid: randomUUID(), type: 'local', url: storageDir },
        uplinks: ['cgu0', 'cpu0'],
        bridges: [`cbg${lab.tag}`, `cbp${lab.tag}`],
        subnet: '10.92.0.0',
      },
      async send(command, body): Promise<Outcome> {
        const vmUuid = (body as { vm?: { uuid?: unknown } } | null)?.vm?.uuid;
        if (command === 'vm.start' && typeof vmUuid === 'string')
          marks.set(vmUuid, agent.serial(vmUuid).length);
        const reply = await agent.call(command, body);
        if (reply.status === 200) return { ok: true, body: reply.body };
        return { ok: false, error: reply.body.error as ErrorBody };
      },
      async guestReady(uuid) {
        // the guest's device loop prints its disks once it runs: acpid and hot-plug answer by then
        await agent.waitSerial(uuid, /NIMBUS-DISKS/, marks.get(uuid) ?? 0);
      },
    };
  },
  async teardown() {
    lab?.destroy();
  },
});
