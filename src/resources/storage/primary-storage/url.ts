/**
 * What a primary storage's url must be for its type. Hosts get it as is (`StorageRef.url` of
 * every storage command, contract/agent.ts), and the agent's backend of the type reads it:
 *
 *   nfs     nfs://<server>/<export path>   QEMU opens volumes over libnfs at that URL and the
 *                                          agent's NFSv3 client makes its directories there
 *   ceph    rbd:<pool>[:conf=<ceph.conf>][:id=<user>]   QEMU's rbd syntax; conf and id (the
 *                                          cephx user, its key in the keyring conf names) are read
 *                                          on each host, so every host needs that file
 *
 * local and shared-mount take a directory of the host (not checked here: older records and the
 * simulator use other forms). A url the agent would refuse is refused at create, naming `url`.
 * Pure.
 */
import { invalidField } from '../../../kernel/errors.js';

const RBD_URL = /^rbd:[A-Za-z0-9_.-]+((?::(conf|id)=[^:]+)*)$/;

/** Why `url` cannot address a primary storage of `type`; undefined when it can. */
export function primaryStorageUrlProblem(type: string, url: string): string | undefined {
  if (type === 'nfs') {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (parsed?.protocol !== 'nfs:' || parsed.hostname === '' || parsed.pathname.length < 2)
      return `an nfs primary storage needs nfs://<server>/<export path>, got ${url}`;
    return undefined;
  }
  if (type === 'ceph' && !RBD_URL.test(url))
    return `a ceph primary storage needs rbd:<pool>[:conf=<ceph.conf>][:id=<user>], got ${url}`;
  return undefined;
}

export function checkPrimaryStorageUrl(type: string, url: string): void {
  const problem = primaryStorageUrlProblem(type, url);
  if (problem) throw invalidField('url', problem, 'PRIMARY_STORAGE_URL_INVALID');
}
