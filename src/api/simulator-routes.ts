/**
 * Simulator control (admin only): fault injection and latency, so tests and demos can make any
 * chain step or host command fail or slow down. Test control, not cloud resources: answered
 * synchronously, not as jobs.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Simulator } from '../drivers/simulator/simulator.js';
import type { FaultRegistry } from '../engine/faults.js';
import { CloudError, forbidden } from '../kernel/errors.js';
import { callerOf } from './auth.js';

const FaultBody = Type.Object(
  {
    point: Type.String({
      pattern: '^(step|rollback|command):[A-Za-z0-9_./-]+$',
      description:
        'step:<job kind>/<step>, rollback:<job kind>/<step> or command:<host command>, e.g. step:host.create/connect or command:host.connect',
    }),
    host: Type.Optional(Type.String({ description: 'only for this host management IP (command faults)' })),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    error: Type.Optional(
      Type.Object(
        {
          code: Type.Optional(Type.String({ pattern: '^[A-Z][A-Z0-9_]*$' })),
          message: Type.Optional(Type.String({ maxLength: 1000 })),
        },
        { additionalProperties: false },
      ),
    ),
    times: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/** an answer documented by its description; every field is sent as it is (no schema filtering) */
const Loose = (description: string) => Type.Object({}, { additionalProperties: true, description });
const NoContent = Type.Null({ description: 'No Content' });

export function registerSimulatorRoutes(
  app: FastifyInstance,
  faults: FaultRegistry,
  simulator: Simulator,
): void {
  const tags = ['simulator'];
  const admin = (request: Parameters<typeof callerOf>[0]) => {
    if (!callerOf(request).isAdmin) throw forbidden('only the admin account may control the simulator');
  };
  // authorisation before validation: a tenant learns nothing from a 400 here either
  const adminFirst = async (request: Parameters<typeof callerOf>[0]) => admin(request);
  app.post(
    '/v1/simulator/faults',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'addSimulatorFault',
        summary: 'inject a fault (delay and/or failure)',
        body: FaultBody,
        response: { 201: Loose('the fault, with its uuid') },
      },
    },
    async (request, reply) => {
      admin(request);
      const body = request.body as Parameters<FaultRegistry['add']>[0];
      const fault = faults.add({
        error: { code: 'INJECTED_FAULT' },
        ...body,
        ...(body.error === undefined && body.delayMs ? { error: undefined } : {}),
      });
      return reply.code(201).send(fault);
    },
  );
  app.get(
    '/v1/simulator/faults',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'listSimulatorFaults',
        summary: 'list injected faults',
        response: { 200: Loose('{items: faults}') },
      },
    },
    async (request) => {
      admin(request);
      return { items: faults.list() };
    },
  );
  app.delete(
    '/v1/simulator/faults',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'clearSimulatorFaults',
        summary: 'clear every injected fault',
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      admin(request);
      faults.clear();
      return reply.code(204).send();
    },
  );
  app.delete(
    '/v1/simulator/faults/:uuid',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'removeSimulatorFault',
        summary: 'remove one fault',
        params: Type.Object({ uuid: Type.String({ format: 'uuid' }) }),
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      admin(request);
      faults.remove((request.params as { uuid: string }).uuid);
      return reply.code(204).send();
    },
  );
  app.post(
    '/v1/simulator/hosts/:address/actions/:power',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'setSimulatedHostPower',
        summary: 'power a simulated machine off (it stops answering; its VMs are gone) or on',
        response: { 200: Loose('{address, poweredOn}') },
        params: Type.Object({
          address: Type.String({ minLength: 1 }),
          power: Type.Enum(['power-off', 'power-on']),
        }),
      },
    },
    async (request) => {
      admin(request);
      const { address, power } = request.params as { address: string; power: string };
      if (!(await simulator.setPower(address, power === 'power-on'))) {
        throw new CloudError('NotFound', 'SIMULATED_HOST_NOT_FOUND', `no simulated machine at ${address}`);
      }
      return { address, poweredOn: power === 'power-on' };
    },
  );
  app.post(
    '/v1/simulator/vms/:uuid/state',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'setSimulatedVmState',
        summary: "change what the simulated hypervisor says about a VM, behind the platform's back",
        response: { 200: Loose('{uuid, state}') },
        params: Type.Object({ uuid: Type.String({ format: 'uuid' }) }),
        body: Type.Object(
          { state: Type.Enum(['Running', 'Stopped', 'Paused', 'Absent']) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      admin(request);
      const { uuid } = request.params as { uuid: string };
      const { state } = request.body as { state: 'Running' | 'Stopped' | 'Paused' | 'Absent' };
      if (!(await simulator.setVmState(uuid, state))) {
        throw new CloudError(
          'NotFound',
          'SIMULATED_VM_NOT_FOUND',
          `no simulated hypervisor knows vm ${uuid}`,
        );
      }
      return { uuid, state };
    },
  );
  app.get(
    '/v1/simulator/network/hosts/:address',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'getSimulatedHostNetwork',
        summary: 'what a simulated host’s network is configured with: bridges, DHCP, security-group rules',
        response: { 200: Loose('{address, bridges, dhcp, sg, plugged}') },
        params: Type.Object({ address: Type.String({ minLength: 1 }) }),
      },
    },
    async (request) => {
      admin(request);
      const { address } = request.params as { address: string };
      const h = simulator.networks.host(address);
      return {
        address,
        bridges: h.bridges ?? null,
        dhcp: h.dhcp ?? null,
        sg: h.sg ?? null,
        plugged: Object.fromEntries([...h.plugged].map(([vm, nics]) => [vm, [...nics.values()]])),
      };
    },
  );
  app.get(
    '/v1/simulator/network/routers/:uuid',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'getSimulatedRouterConfig',
        summary: 'the configuration a simulated virtual router runs',
        response: { 200: Loose('the router configuration (router.apply-config)') },
        params: Type.Object({ uuid: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request) => {
      admin(request);
      const { uuid } = request.params as { uuid: string };
      const r = simulator.networks.router(uuid);
      if (!r)
        throw new CloudError('NotFound', 'SIMULATED_ROUTER_NOT_FOUND', `no configuration for router ${uuid}`);
      return r;
    },
  );
  app.get(
    '/v1/simulator/network/commands',
    {
      preValidation: adminFirst,
      schema: {
        tags,
        operationId: 'listSimulatedNetworkCommands',
        summary: 'network commands the simulated hosts received, oldest first',
        // query values arrive as text (no type coercion): `after` is digits, read as a number below
        querystring: Type.Object(
          {
            address: Type.Optional(Type.String()),
            command: Type.Optional(Type.String()),
            after: Type.Optional(
              Type.String({ pattern: '^[0-9]{1,15}$', description: 'only commands with a seq above this' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Loose('{items: commands, lastSeq}') },
      },
    },
    async (request) => {
      admin(request);
      const q = request.query as { address?: string; command?: string; after?: string };
      return {
        items: simulator.networks.commands({
          ...(q.address ? { address: q.address } : {}),
          ...(q.command ? { command: q.command } : {}),
          ...(q.after !== undefined ? { afterSeq: Number(q.after) } : {}),
        }),
        lastSeq: simulator.networks.lastSeq(),
      };
    },
  );
}
