/**
 * `nimbus cluster status` (admin): GET /v1/cluster/status — the management nodes, the database
 * they share and the hosts each owns, as three small tables or (`-f json`) the answer as is.
 * It hangs off `cluster` (the compute kind) because that is the word an operator types.
 */
import { type Command, Option } from 'commander';
import type { Ctx } from './context.js';

interface Status {
  nodes: Array<Record<string, unknown>>;
  database: {
    serverVersion: string;
    role: string;
    sizeBytes: number;
    replayLagSeconds: number | null;
    replicas: Array<{ name: string; address: string | null; state: string; replayLagSeconds: number | null }>;
  };
  ownership: Array<{ node: string; hosts: string[] }>;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const lag = (s: number | null) => (s === null ? '-' : `${s.toFixed(1)}s`);

export function renderClusterStatus(s: Status): string {
  const nodes = table(
    ['NODE', 'ADDRESS', 'VERSION', 'STATE', 'HEARTBEAT', 'RUNNING JOBS', 'HOSTS'],
    s.nodes.map((n) => [
      String(n.name),
      String(n.address),
      String(n.version),
      String(n.state),
      String(n.heartbeatAt),
      String(n.runningJobs),
      String(n.ownedHosts),
    ]),
  );
  const d = s.database;
  const database = [
    `database: PostgreSQL ${d.serverVersion}, ${d.role}, ${(d.sizeBytes / 2 ** 20).toFixed(1)} MiB` +
      (d.role === 'standby' ? `, replay lag ${lag(d.replayLagSeconds)}` : ''),
    ...(d.replicas.length
      ? [
          table(
            ['REPLICA', 'ADDRESS', 'STATE', 'REPLAY LAG'],
            d.replicas.map((r) => [r.name, r.address ?? '', r.state, lag(r.replayLagSeconds)]),
          ),
        ]
      : ['replicas: none']),
  ].join('\n');
  const owners = table(
    ['NODE', 'OWNS HOSTS'],
    s.ownership.map((o) => [o.node, o.hosts.join(', ') || '-']),
  );
  return [nodes, database, owners].join('\n\n');
}

export function addClusterStatus(parent: Command, ctx: Ctx): void {
  parent
    .command('status')
    .description('the management nodes, their database (role, lag, size) and the hosts each owns (admin)')
    .addOption(
      new Option('-f, --output <format>', 'tables, or the answer as JSON')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action(async (o: { output: string }) => {
      const res = await ctx.client().get('/v1/cluster/status');
      ctx.out(
        o.output === 'json' ? JSON.stringify(res.body, null, 2) : renderClusterStatus(res.body as Status),
      );
    });
}
