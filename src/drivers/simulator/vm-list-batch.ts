/**
 * `vm.list` of many simulated hosts at once in one read: the reconciler asks every host of a page
 * in the same instant, and a real host answers from its own memory, so the simulator (whose hosts
 * share one table) must not turn a page of hosts into a page of round trips. Calls made in the
 * same turn of the event loop share one `select … where host_address in (…)`; each gets exactly
 * the rows its own host would have read alone, as of that read.
 */
import type { Db } from '../../db/pool.js';

type Listed = Array<{ uuid: string; state: 'Running' | 'Stopped' | 'Paused' }>;

interface Batch {
  addresses: Set<string>;
  result: Promise<Map<string, Listed>>;
}

/** the batch filling up, per simulator world */
const filling = new WeakMap<Db, Batch>();

export function listVms(world: Db, address: string): Promise<Listed> {
  let batch = filling.get(world);
  if (!batch) {
    const addresses = new Set<string>();
    const result = new Promise<void>((r) => setImmediate(r)).then(async () => {
      filling.delete(world); // later calls start the next batch
      const rows = await world
        .selectFrom('simulatorVms')
        .select(['vmUuid', 'state', 'hostAddress'])
        .where('hostAddress', 'in', [...addresses])
        .execute();
      const by = new Map<string, Listed>();
      for (const r of rows) {
        const list = by.get(r.hostAddress) ?? [];
        list.push({ uuid: r.vmUuid, state: r.state as Listed[number]['state'] });
        by.set(r.hostAddress, list);
      }
      return by;
    });
    batch = { addresses, result };
    filling.set(world, batch);
  }
  batch.addresses.add(address);
  return batch.result.then((by) => by.get(address) ?? []);
}
