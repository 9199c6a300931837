/**
 * Placement: the scheduler proposes hosts from the in-memory candidates, and the first host whose
 * conditional reservation succeeds takes the VM. A reservation refused (someone else took the
 * room since the snapshot) moves on to the next proposed host; after a few, or when nothing
 * fits, the candidates are reloaded and the scheduler runs again on the fresh figures — at most
 * settings.maxPlacementAttempts times. Then the job fails with the scheduler's own explanation
 * ("no host with 64 GiB free memory in zone z1 …").
 */
import type { Db } from '../../../db/pool.js';
import type { HostAddress } from '../../../drivers/port.js';
import { CloudError } from '../../../kernel/errors.js';
import type { Settings } from '../../../kernel/settings.js';
import {
  type AffinityGroup,
  type PlacementRequest,
  type PlacementResult,
  resolveConfig,
  type SchedulerConfig,
  schedule,
} from '../../../scheduler/index.js';
import type { CandidateSnapshot } from './candidates.js';
import { type HardRule, reserveHost, type Slot } from './host-capacity.js';

/** hosts tried per scheduler run before the candidates are reloaded */
const TRIES_PER_RUN = 4;
/**
 * Hosts a scheduler run looks at when the request narrows nothing: a random sample, the best of
 * which is taken ("power of d choices": nearly as even a spread as scanning every host, at a
 * fraction of the CPU — a run over 1,000 hosts costs milliseconds, and 10,000 creates would spend
 * most of a core on it). Hinted and affinity-bound requests see every host; a sample where
 * nothing fits falls back to every host, so an explanation always covers them all.
 */
export const SAMPLE_SIZE = 64;

/** `SAMPLE_SIZE` hosts drawn without replacement (partial Fisher–Yates; reorders the view). */
export function sample<T>(hosts: T[], size = SAMPLE_SIZE, random: () => number = Math.random): T[] {
  if (hosts.length <= size * 2) return hosts;
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(random() * (hosts.length - i));
    const picked = hosts[j]!;
    hosts[j] = hosts[i]!;
    hosts[i] = picked;
  }
  return hosts.slice(0, size);
}

const narrows = (r: PlaceInput['request']) =>
  r.hints !== undefined && Object.values(r.hints).some((v) => v !== undefined);

export interface PlaceInput {
  vm: { uuid: string; cpu: number; memory: number; affinityGroupUuid: string | null };
  request: Omit<PlacementRequest, 'affinityGroups'>;
  strategy: 'spread' | 'pack' | null;
  slot: Slot;
}

export interface Placement {
  hostUuid: string;
  primaryStorageUuid: string;
  local: boolean;
  address: HostAddress;
}

export function schedulerConfig(
  settings: Settings,
  strategy: 'spread' | 'pack' | null,
  grouped = false,
): SchedulerConfig {
  return resolveConfig({
    cpuOvercommit: settings.cpuOvercommit,
    memoryOvercommit: settings.memoryOvercommit,
    reservedMemoryPerHost: settings.reservedMemoryPerHost,
    maxVmsPerHost: settings.maxVmsPerHost,
    strategy: strategy ?? settings.placementStrategy,
    // a member of an affinity group takes the best host, not a random one of the best few: a
    // soft rule is then kept whenever some host keeps it (the draw exists to spread unrelated
    // concurrent requests, and a group's placements are few)
    ...(grouped ? { topN: 1 } : {}),
  });
}

interface GroupFacts {
  group: AffinityGroup;
  hard: HardRule | undefined;
}

async function groupFacts(db: Db, vmUuid: string, groupUuid: string): Promise<GroupFacts | undefined> {
  const [group, members] = await Promise.all([
    db
      .selectFrom('affinityGroups')
      .select(['uuid', 'name', 'policy', 'enforcement'])
      .where('uuid', '=', groupUuid)
      .executeTakeFirst(),
    db
      .selectFrom('vms')
      .select(['hostUuid', 'migrationTargetUuid'])
      .where('affinityGroupUuid', '=', groupUuid)
      .where('uuid', '<>', vmUuid)
      .where((eb) => eb.or([eb('hostUuid', 'is not', null), eb('migrationTargetUuid', 'is not', null)]))
      .execute(),
  ]);
  if (!group) return undefined;
  const memberHostUuids = members.flatMap((m) =>
    [m.hostUuid, m.migrationTargetUuid].filter((h): h is string => h !== null),
  );
  return {
    group: { ...group, memberHostUuids },
    hard: group.enforcement === 'hard' ? { groupUuid: group.uuid, policy: group.policy } : undefined,
  };
}

/** Reserves capacity for the VM on the best host that has room, or throws NO_HOST_AVAILABLE. */
export async function place(
  db: Db,
  snapshot: CandidateSnapshot,
  settings: Settings,
  input: PlaceInput,
): Promise<Placement> {
  const cfg = schedulerConfig(settings, input.strategy, input.vm.affinityGroupUuid !== null);
  const limits = settings;
  const tried: string[] = [];
  let last: PlacementResult | undefined;
  const attempts = Math.max(1, settings.maxPlacementAttempts);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const imageUuid = input.request.image.uuid;
    const [candidates, facts] = await Promise.all([
      attempt === 0 ? snapshot.view(imageUuid) : snapshot.freshView(imageUuid),
      input.vm.affinityGroupUuid ? groupFacts(db, input.vm.uuid, input.vm.affinityGroupUuid) : undefined,
    ]);
    // the hosts tried are not excluded from the next run: it sees freshly loaded figures, so a
    // host that is really full fails the capacity filters (and the explanation says so)
    const request = { ...input.request, ...(facts ? { affinityGroups: [facts.group] } : {}) };
    const pool = facts || narrows(input.request) ? candidates : sample(candidates);
    last = schedule(pool, request, cfg);
    if (last.hosts.length === 0 && pool !== candidates) last = schedule(candidates, request, cfg);
    // nothing fits even on freshly loaded candidates: another run would say the same
    if (last.hosts.length === 0 && attempt > 0) break;
    for (const ranked of last.hosts.slice(0, TRIES_PER_RUN)) {
      const ok = facts?.hard
        ? await db.transaction().execute(async (tx) => {
            // one placement at a time per hard group, so two members cannot both take the
            // last host the rule allows; the statement itself re-checks the rule
            await tx
              .selectFrom('affinityGroups')
              .select('uuid')
              .where('uuid', '=', facts.hard!.groupUuid)
              .forUpdate()
              .execute();
            return reserveHost(tx, input.vm, ranked.hostUuid, limits, {
              slot: input.slot,
              hard: facts.hard!,
            });
          })
        : await reserveHost(db, input.vm, ranked.hostUuid, limits, { slot: input.slot });
      if (ok) {
        snapshot.onHostCapacity(ranked.hostUuid, input.vm.cpu, input.vm.memory, 1);
        const address = snapshot.address(ranked.hostUuid) ?? (await addressOf(db, ranked.hostUuid));
        return {
          hostUuid: ranked.hostUuid,
          primaryStorageUuid: ranked.primaryStorageUuid,
          local: ranked.storage.type === 'local',
          address,
        };
      }
      tried.push(ranked.hostUuid);
    }
  }
  const explanation =
    last && last.hosts.length === 0 && last.explanation
      ? last.explanation
      : `every host the scheduler proposed (${tried.length}) was taken by concurrent placements; try again`;
  throw new CloudError('Unavailable', 'NO_HOST_AVAILABLE', explanation, {
    details: { rejected: last?.rejected ?? {}, tried: tried.length },
    retryable: last !== undefined && last.hosts.length > 0,
  });
}

export async function addressOf(db: Db, hostUuid: string): Promise<HostAddress> {
  const h = await db
    .selectFrom('hosts')
    .select(['uuid', 'managementIp', 'hypervisorType'])
    .where('uuid', '=', hostUuid)
    .executeTakeFirst();
  if (!h) throw new CloudError('NotFound', 'HOST_NOT_FOUND', `host ${hostUuid} not found`);
  return h;
}
