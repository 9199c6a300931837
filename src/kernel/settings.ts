/**
 * Platform tunables, with the defaults our peers use (ZStack's global configs, Nova's allocation
 * ratios). One object, built at start-up from defaults and NIMBUS_SETTINGS (a JSON object),
 * handed to every flow through its deps. Defaults are explained where they are set.
 */

export interface Settings {
  /** vCPUs placed per physical CPU (ZStack cpu.overProvisioning.ratio) */
  cpuOvercommit: number;
  /** memory placed per byte of physical memory (1.0: no over-commit, the safe default) */
  memoryOvercommit: number;
  /** memory kept for the hypervisor itself on every host, bytes (ZStack KVM reservedMemory 1G) */
  reservedMemoryPerHost: number;
  /** VMs per host at most (0: no limit) */
  maxVmsPerHost: number;
  /** placement: spread VMs over hosts, or pack them onto as few as possible */
  placementStrategy: 'spread' | 'pack';
  /** a destroyed VM or deleted volume/image is expunged after this many seconds (ZStack: 7 days) */
  retentionSeconds: number;
  /** how often the reaper looks for expired destroyed resources, seconds */
  reaperIntervalSeconds: number;
  /** graceful stop waits this long before powering off, seconds */
  stopTimeoutSeconds: number;
  /** how often hosts are asked what runs on them, seconds */
  reconcileIntervalSeconds: number;
  /** how many placements a create tries before giving up (Nova scheduler_max_attempts 3) */
  maxPlacementAttempts: number;
  /**
   * jobs one management node runs at once; the others wait in the node, still Pending in the
   * database (a dead node's waiting jobs are recovered like any other). Without a cap a burst of
   * thousands of creates has every job queueing on the database pool at once, and the API calls
   * that admit new work wait behind them (accept latency of seconds). 64 keeps the database
   * pool busy while leaving room for the API. A lower cap (32) gave the API more room still in
   * the benchmark, but with real hosts a job waits seconds on its host and a low cap would bound
   * throughput.
   */
  maxRunningJobs: number;
  /** how often each node tops up (and trims) the warm stock of the pools it owns, seconds */
  poolStockIntervalSeconds: number;
  /** how often leases are checked for expiry, seconds */
  leaseScanIntervalSeconds: number;
  /** a holder is told this long before the lease ends, seconds (1 day) */
  leaseNoticeSeconds: number;
  /** an important VM whose lease ended stays stopped this long before it is deleted, seconds (3 days) */
  leaseGraceSeconds: number;
  /** how often leased pool VMs are checked and healed (self-service/health/), seconds */
  healthScanIntervalSeconds: number;
  /**
   * HTTP requests one node has in flight, by class (api/load-shedding.ts); beyond a limit a request
   * is answered at once with 503 OVERLOADED and Retry-After. Writes: 1024, twice the 500-in-flight
   * burst of the 10,000-VM benchmark, which must be fully accepted. Reads: 256; a read holds a
   * page (≤ 1000 rows) only between its query and its response, so memory follows the database
   * pool, not this number, and a deeper queue only adds latency. Long-polls (`?wait=true`) hold
   * their slot up to 60 s but cost almost nothing while they wait: 1024.
   */
  maxInFlightReads: number;
  maxInFlightWrites: number;
  maxInFlightWaits: number;
  /** the Retry-After given with a 503 OVERLOADED, seconds */
  overloadRetryAfterSeconds: number;
  /** how often each node looks for webhook deliveries due, seconds */
  webhookDeliveryIntervalSeconds: number;
  /** a failed delivery waits base × 2^(attempts−1) seconds before the next attempt, at most max */
  webhookRetryBaseSeconds: number;
  webhookRetryMaxSeconds: number;
  /** a receiver that has not answered within this many seconds has failed the attempt */
  webhookTimeoutSeconds: number;
  /** live migrations a host in maintenance runs at once (its VMs leave this many at a time) */
  maintenanceMigrationParallelism: number;
  /** host HA: a fence that failed (or is not confirmed yet) is tried again after this many seconds (doubling per failure, up to 5 min) */
  hostFenceRetrySeconds: number;
  /**
   * host HA without IPMI: the `--self-fence-after` of the clusters' nimbus-agents (0: they do not
   * self-fence, and a kvm host without IPMI credentials cannot be fenced). A silent host counts as
   * fenced once it has stayed silent this long plus `hostSelfFenceMarginSeconds`
   */
  hostSelfFenceSeconds: number;
  hostSelfFenceMarginSeconds: number;
  /** /metrics reads the inventory (VMs, capacity, IPs, jobs) from the database at most this often, seconds */
  metricsCacheSeconds: number;
}

export const DEFAULT_SETTINGS: Settings = {
  cpuOvercommit: 10,
  memoryOvercommit: 1,
  reservedMemoryPerHost: 1024 ** 3,
  maxVmsPerHost: 0,
  placementStrategy: 'spread',
  retentionSeconds: 7 * 24 * 3600,
  reaperIntervalSeconds: 60,
  stopTimeoutSeconds: 60,
  reconcileIntervalSeconds: 10,
  maxPlacementAttempts: 5,
  maxRunningJobs: 64,
  poolStockIntervalSeconds: 2,
  leaseScanIntervalSeconds: 30,
  leaseNoticeSeconds: 24 * 3600,
  leaseGraceSeconds: 3 * 24 * 3600,
  healthScanIntervalSeconds: 30,
  maxInFlightReads: 256,
  maxInFlightWrites: 1024,
  maxInFlightWaits: 1024,
  overloadRetryAfterSeconds: 1,
  metricsCacheSeconds: 5,
  maintenanceMigrationParallelism: 2,
  hostFenceRetrySeconds: 10,
  hostSelfFenceSeconds: 0,
  hostSelfFenceMarginSeconds: 15,
  webhookDeliveryIntervalSeconds: 1,
  webhookRetryBaseSeconds: 10,
  webhookRetryMaxSeconds: 3600,
  webhookTimeoutSeconds: 10,
};

/** Defaults overlaid with a JSON object (unknown keys and wrong types are refused, naming the key). */
export function loadSettings(json: string | undefined, overrides: Partial<Settings> = {}): Settings {
  const parsed: Record<string, unknown> = json ? (JSON.parse(json) as Record<string, unknown>) : {};
  const merged: Record<string, unknown> = { ...DEFAULT_SETTINGS, ...parsed, ...overrides };
  for (const [key, value] of Object.entries(merged)) {
    const expected = DEFAULT_SETTINGS[key as keyof Settings];
    if (expected === undefined) throw new Error(`NIMBUS_SETTINGS: unknown setting '${key}'`);
    if (typeof value !== typeof expected)
      throw new Error(`NIMBUS_SETTINGS: '${key}' must be a ${typeof expected}`);
  }
  return merged as unknown as Settings;
}
