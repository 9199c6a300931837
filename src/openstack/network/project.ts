/**
 * Project ids: a Keystone project is a Nimbus account, and its id is the account's UUID. Clients
 * sometimes spell ids without dashes (Keystone's own style), so ids compare without them.
 */
import type { Caller } from '../../kernel/caller.js';
import { CloudError, forbidden } from '../../kernel/errors.js';

export const sameId = (a: string, b: string) =>
  a.replace(/-/g, '').toLowerCase() === b.replace(/-/g, '').toLowerCase();

/**
 * A create naming a project (`tenant_id`/`project_id`) makes the resource for the caller's own
 * account only: Nimbus services act for the caller, so a resource made "for" another project
 * would not be that project's. The admin is told so too, rather than getting it in its own.
 */
export function refuseProject(caller: Caller, body: Record<string, unknown>): void {
  for (const field of ['project_id', 'tenant_id']) {
    const given = body[field];
    if (typeof given === 'string' && !sameId(given, caller.accountUuid))
      throw new CloudError(
        'Invalid',
        'PROJECT_NOT_SUPPORTED',
        `${field}: resources are made in the caller's own project (${caller.accountUuid}); log in to project ${given} to make one there`,
        {
          details: { fields: [{ field, problem: `is not the caller's project ${caller.accountUuid}` }] },
        },
      );
  }
}

/** a path's project id must be the token's (the admin may name any) */
export function assertProject(caller: Caller, projectId: string): void {
  if (!caller.isAdmin && !sameId(projectId, caller.accountUuid))
    throw forbidden(`the token is for project ${caller.accountUuid}, not ${projectId}`, 'PROJECT_MISMATCH');
}

/** a project id as a Nimbus account UUID (Keystone spells ids without dashes; either is taken) */
export function projectUuid(projectId: string): string {
  const hex = projectId.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) return projectId;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
