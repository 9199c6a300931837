/**
 * `GET /v1/vms/{uuid}/serial-log?tail=N` (docs/compute.md "Serial log"): the end of a VM's serial
 * console output, read at once (no job) from the host that keeps it — the host the VM runs on,
 * or, for a stopped VM, the host it last ran on (the log outlives a stop there; a VM that never
 * started, or whose host is gone, has none: 409 VM_SERIAL_LOG_UNAVAILABLE). `tail`: bytes of the
 * end, bounded (SERIAL_LOG_TAIL_MAX). A real host answers from QEMU's serial file
 * (agent/qemu/serial-log.ts); a simulated one from the synthetic log it keeps per VM
 * (drivers/simulator/serial-log.ts). A tenant reads only its own VMs' (another's is a 404).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { SERIAL_LOG_TAIL_DEFAULT, SERIAL_LOG_TAIL_MAX, VmSerialLog } from '../../../contract/compute.js';
import { CloudError, invalid, notFound } from '../../../kernel/errors.js';
import type { ServiceContext } from '../../service.js';

export function registerSerialLogRoute(app: FastifyInstance, ctx: ServiceContext): void {
  app.get(
    '/v1/vms/:uuid/serial-log',
    {
      config: { kind: 'vm' },
      schema: {
        tags: ['vms'],
        operationId: 'getVmSerialLog',
        summary: "the end of a VM's serial console output (from its host; no job)",
        description: `\`tail\`: bytes of the end of the log (default ${SERIAL_LOG_TAIL_DEFAULT}, at most ${SERIAL_LOG_TAIL_MAX}). Read from the host the VM runs on, or last ran on when it is stopped: 409 VM_SERIAL_LOG_UNAVAILABLE when it has no such host. A simulated host answers a synthetic boot log it keeps per VM.`,
        params: Type.Object({ uuid: Type.String({ format: 'uuid' }) }),
        querystring: Type.Object(
          {
            // a string: query strings are not coerced (api/server.ts); checked below
            tail: Type.Optional(
              Type.String({
                pattern: '^[0-9]{1,16}$',
                description: `bytes of the end of the log, 1–${SERIAL_LOG_TAIL_MAX} (default ${SERIAL_LOG_TAIL_DEFAULT})`,
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: VmSerialLog },
      },
    },
    async (request) => {
      const caller = request.caller;
      if (!caller)
        throw new CloudError('Unauthenticated', 'TOKEN_MISSING', 'send Authorization: Bearer <token>');
      const { uuid } = request.params as { uuid: string };
      const given = (request.query as { tail?: string }).tail;
      const tail = given === undefined ? SERIAL_LOG_TAIL_DEFAULT : Number(given);
      if (tail < 1 || tail > SERIAL_LOG_TAIL_MAX)
        throw invalid([
          { field: 'tail', problem: `bytes of the end of the log: 1 to ${SERIAL_LOG_TAIL_MAX}` },
        ]);
      let q = ctx.db
        .selectFrom('vms as v')
        .select(['v.uuid', 'v.state', 'v.hostUuid', 'v.lastHostUuid'])
        .where('v.uuid', '=', uuid);
      if (!caller.isAdmin) q = q.where('v.accountUuid', '=', caller.accountUuid);
      const vm = await q.executeTakeFirst();
      if (!vm) throw notFound('vm', uuid);
      const hostUuid = vm.hostUuid ?? vm.lastHostUuid;
      const host =
        hostUuid === null
          ? undefined
          : await ctx.db
              .selectFrom('hosts')
              .select(['uuid', 'managementIp', 'hypervisorType'])
              .where('uuid', '=', hostUuid)
              .executeTakeFirst();
      if (!host)
        throw new CloudError(
          'Conflict',
          'VM_SERIAL_LOG_UNAVAILABLE',
          `vm ${uuid} has no serial log: it is ${vm.state} and ${hostUuid === null ? 'never ran on a host' : `its last host ${hostUuid} is gone`}`,
          { details: { state: vm.state, hostUuid } },
        );
      const unavailable = (why: string) =>
        new CloudError('Conflict', 'VM_SERIAL_LOG_UNAVAILABLE', `vm ${uuid} has no serial log: ${why}`, {
          details: { state: vm.state, hostUuid },
        });
      const { log, size } = await ctx.deps.drivers
        .send(host, 'vm.serial-log', { vmUuid: uuid, tailBytes: tail })
        .catch((err: unknown) => {
          // made but never started there (create-stopped), or gone from it
          if (err instanceof CloudError && err.code === 'AGENT_VM_NOT_FOUND')
            throw unavailable(`host ${host.uuid} has no log of it (it never started there)`);
          throw err;
        });
      return { vmUuid: uuid, hostUuid: host.uuid, log, size, truncated: size > tail };
    },
  );
}
