/**
 * The commit-rate ceiling: how many single-statement transactions per second this PostgreSQL
 * commits for the create's write pattern, measured in the same run as the figures it is put
 * beside (the machine is shared, so only a same-run reference means anything).
 *
 * A VM create is ~10 small autocommitted statements on as many connections as the node's pool
 * (admission insert, claim, journal saves, host reservation, volume row, volume Ready, the
 * simulated host's record, mark Running, finish): each a row of a few hundred bytes with a uuid
 * key, a couple of indexes and a JSON document, each its own WAL flush. The probe runs exactly
 * that shape — `insert` of one such row per transaction on `connections` clients at once — into
 * a scratch table it drops after.
 */
import pg from 'pg';

export interface CommitCeiling {
  connections: number;
  seconds: number;
  commits: number;
  perSecond: number;
}

const BODY = JSON.stringify({
  phase: 'forward',
  done: ['create-record', 'allocate-host', 'allocate-primary-storage'],
  current: 'start-on-host',
  ctx: { hostUuid: '01937a1e-0000-7000-8000-000000000000', cpu: 1, memory: 1073741824, nics: [] },
});

export async function measureCommitCeiling(
  databaseUrl: string,
  connections = 8,
  seconds = 5,
): Promise<CommitCeiling> {
  const table = `bench_commit_probe_${process.pid}`;
  const clients = Array.from({ length: connections }, () => new pg.Client({ connectionString: databaseUrl }));
  await Promise.all(clients.map((c) => c.connect()));
  const [first] = clients as [pg.Client];
  await first.query(
    `create table ${table} (uuid uuid primary key default gen_random_uuid(), name text not null,
       state text not null, body jsonb not null, created_at timestamptz not null default now())`,
  );
  await first.query(`create index on ${table} (state, created_at)`);
  try {
    let commits = 0;
    const until = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (c, k) => {
        for (let i = 0; performance.now() < until; i++) {
          await c.query({
            name: 'probe',
            text: `insert into ${table} (name, state, body) values ($1, 'Running', $2)`,
            values: [`probe-${k}-${i}`, BODY],
          });
          commits++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    return { connections, seconds: elapsed, commits, perSecond: commits / elapsed };
  } finally {
    await first.query(`drop table if exists ${table}`).catch(() => {});
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}
