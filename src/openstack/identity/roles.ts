/** Keystone roles over Nimbus's two kinds of account. */

/** the roles a caller holds: the admin account is admin everywhere; every account is member and reader of itself */
export function rolesOf(isAdmin: boolean): { id: string; name: string }[] {
  const base = [
    { id: 'member', name: 'member' },
    { id: 'reader', name: 'reader' },
  ];
  return isAdmin ? [{ id: 'admin', name: 'admin' }, ...base] : base;
}
