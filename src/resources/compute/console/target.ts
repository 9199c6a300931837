/**
 * Whose console, where: the VM a console request names, checked for the account asking (a tenant
 * sees only its own VMs: another account's is a 404, as everywhere), and the host it runs on.
 * A console needs a Running VM on a kvm host: a simulated host has no VNC, and says so
 * (VM_CONSOLE_UNAVAILABLE) rather than failing later in the tunnel.
 */
import type { Db } from '../../../db/pool.js';
import { CloudError, notFound } from '../../../kernel/errors.js';

export interface ConsoleTarget {
  vmUuid: string;
  host: { uuid: string; name: string; managementIp: string; hypervisorType: string };
}

/** A tenant's 404 for a VM of another account (or none), before anything else is looked at. */
export async function assertVmVisible(db: Db, vmUuid: string, who: { accountUuid: string }): Promise<void> {
  const row = await db
    .selectFrom('vms')
    .select('uuid')
    .where('uuid', '=', vmUuid)
    .where('accountUuid', '=', who.accountUuid)
    .executeTakeFirst();
  if (!row) throw notFound('vm', vmUuid);
}

export async function consoleTarget(
  db: Db,
  vmUuid: string,
  who: { accountUuid: string; isAdmin: boolean },
): Promise<ConsoleTarget> {
  let query = db
    .selectFrom('vms as v')
    .leftJoin('hosts as h', 'h.uuid', 'v.hostUuid')
    .select(['v.uuid', 'v.state', 'v.hostUuid', 'h.name as hostName', 'h.managementIp', 'h.hypervisorType'])
    .where('v.uuid', '=', vmUuid);
  if (!who.isAdmin) query = query.where('v.accountUuid', '=', who.accountUuid);
  const row = await query.executeTakeFirst();
  if (!row) throw notFound('vm', vmUuid);
  if (row.state !== 'Running' || row.hostUuid === null || row.managementIp === null) {
    throw new CloudError(
      'Conflict',
      'VM_INVALID_STATE',
      `cannot open the console of vm ${vmUuid}: it is ${row.state}; the console needs Running`,
      { details: { state: row.state, operation: 'console', allowedStates: ['Running'] } },
    );
  }
  if (row.hypervisorType !== 'kvm') {
    throw new CloudError(
      'Conflict',
      'VM_CONSOLE_UNAVAILABLE',
      `vm ${vmUuid} runs on host ${row.hostName} of hypervisor type ${row.hypervisorType}: only kvm hosts (nimbus-agent) serve a VNC console`,
      { details: { hostUuid: row.hostUuid, hypervisorType: row.hypervisorType } },
    );
  }
  return {
    vmUuid,
    host: {
      uuid: row.hostUuid,
      name: row.hostName ?? '',
      managementIp: row.managementIp,
      hypervisorType: row.hypervisorType,
    },
  };
}
