/**
 * What a VM's guest is given on its config drive beyond its name (`vm_guest_configs`): the
 * user-data and the cloud-init instance id. Written in a VM's admission (a pool VM: its pool's
 * bootstrap) or at a hand-out (the holder's login, lease/login.ts); read into every `vm.start`
 * spec, so a VM started again, on any host, gets the same.
 */
import type { VmSpec } from '../../../contract/agent.js';
import type { Executor } from '../../../db/transaction.js';

export async function withGuestConfig(db: Executor, spec: VmSpec): Promise<VmSpec> {
  const row = await db
    .selectFrom('vmGuestConfigs')
    .select(['userData', 'instanceId'])
    .where('vmUuid', '=', spec.uuid)
    .executeTakeFirst();
  if (!row) return spec;
  return {
    ...spec,
    ...(row.userData !== null ? { userData: row.userData } : {}),
    ...(row.instanceId !== null ? { instanceId: row.instanceId } : {}),
  };
}

/** In a VM's admitting transaction: the user-data its create was given (an API's, or a pool's bootstrap). */
export async function recordUserData(tx: Executor, vmUuid: string, userData: string): Promise<void> {
  await tx.insertInto('vmGuestConfigs').values({ vmUuid, userData, instanceId: null }).execute();
}

/** Why a user-data text is refused (its UTF-8 size), or undefined. */
export function userDataProblem(userData: string, maxBytes: number): string | undefined {
  const bytes = Buffer.byteLength(userData, 'utf8');
  return bytes > maxBytes
    ? `${bytes} bytes is more than the ${maxBytes} bytes user-data may hold`
    : undefined;
}
