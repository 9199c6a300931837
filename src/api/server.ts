/**
 * The HTTP server: Fastify + TypeBox schemas (validated with every problem reported), OpenAPI at
 * /v1/openapi.json with a browsable page at /v1/docs, bearer auth, request ids that follow a
 * request into its job and logs, Prometheus metrics at /metrics, and one route set per kind.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { CONSOLE_WEBSOCKET_PATH } from '../contract/console.js';
import type { Db } from '../db/pool.js';
import type { Simulator } from '../drivers/simulator/simulator.js';
import type { Engine } from '../engine/engine.js';
import type { EventBus } from '../engine/events.js';
import type { FaultRegistry } from '../engine/faults.js';
import type { KindRegistry } from '../engine/query/schema.js';
import { newId } from '../kernel/ids.js';
import { registerOpenStackApi } from '../openstack/index.js';
import { ConsoleTokens } from '../resources/compute/console/tokens.js';
import type { Sessions } from '../resources/identity/session/sessions.js';
import type { TagService } from '../resources/operations/tag/service.js';
import type { FlowDeps, KindService } from '../resources/service.js';
import { registerAuth } from './auth.js';
import { type ConsoleOpener, registerConsoleRoutes } from './console-routes.js';
import { clientErrorHandler, errorHandler, frameworkErrorHandler } from './errors.js';
import { registerEventStream } from './events-stream.js';
import { type Readiness, registerHealthRoutes } from './health-routes.js';
import { registerInputGuard } from './input-guard.js';
import { registerKindRoutes } from './kind-routes.js';
import { type LoadLimits, registerLoadShedding } from './load-shedding.js';
import { registerMethodTable } from './method-table.js';
import type { Metrics } from './metrics.js';
import { checkMetricsToken } from './metrics-token.js';
import { completeDocument } from './openapi/complete.js';
import { registerSimulatorRoutes } from './simulator-routes.js';
import { registerWebConsole } from './web-console.js';

export interface ServerDeps {
  db: Db;
  log: Logger;
  engine: Engine<FlowDeps>;
  events: EventBus;
  faults: FaultRegistry;
  simulator: Simulator;
  sessions: Sessions;
  metrics: Metrics;
  registry: KindRegistry;
  services: KindService[];
  tags: TagService;
  version: string;
  /** in-flight limits (settings); beyond them 503 OVERLOADED */
  limits: LoadLimits;
  /** when set, /metrics wants `Authorization: Bearer <metricsToken>` */
  metricsToken?: string;
  /** a connection of its own for health and metrics (db-probe.ts); the main pool otherwise */
  probe?: { ping(): Promise<void> };
  /** what /v1/ready answers (health-routes.ts) */
  readiness: Readiness;
  /** opens a VM's VNC on its kvm host (the console WebSocket relays it) */
  consoles: ConsoleOpener;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildServer(d: ServerDeps): Promise<FastifyInstance> {
  const contracts = new Map(d.services.map((s) => [s.contract.kind, s.contract]));
  const app: FastifyInstance = Fastify({
    loggerInstance: d.log as FastifyBaseLogger,
    // one line per request, written by the onResponse hook below
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // refusals before routing (bad URL, over-long parameter, over-large headers) in the one shape
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // event streams stay open indefinitely: a stopping node closes them instead of waiting
    forceCloseConnections: true,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : newId();
    },
    ajv: {
      customOptions: {
        allErrors: true,
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        keywords: ['x-unit', 'x-cli-ref-alias', 'x-cli-file'],
        // NaN and ±Infinity (JSON's 1e400) are not numbers a column holds
        strictNumbers: true,
      },
    },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Nimbus API',
        version: d.version,
        description:
          'Every mutating call returns 202 with a job (Location: /v1/jobs/{uuid}); add ?wait=true to get the finished job. Errors: {"error":{"code","reason","message","details"}}.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // error responses, operationIds, domain tags, list parameters: one pass (openapi/complete.ts)
    transformObject: (document) =>
      completeDocument((document as { openapiObject: Record<string, unknown> }).openapiObject, {
        singularOf: (kind) => contracts.get(kind)?.singular,
        createRulesOf: (kind) => contracts.get(kind)?.createRules,
      }),
  });
  await app.register(swaggerUi, { routePrefix: '/v1/docs' });
  await app.register(websocket, {
    options: {
      // a VNC client sends key and pointer events: small messages
      maxPayload: 1024 * 1024,
      // noVNC (older versions) and websockify clients ask for the `binary` subprotocol
      handleProtocols: (protocols: Set<string>) => (protocols.has('binary') ? 'binary' : false),
    },
  });

  app.setErrorHandler(errorHandler);
  const methods = registerMethodTable(app);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    const allowed = methods.allowedFor(path);
    if (allowed.length > 0) {
      // the path exists, the method does not: 405 with Allow (RFC 9110 §15.5.6)
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({
          error: {
            code: 'METHOD_NOT_ALLOWED',
            reason: 'Invalid',
            message: `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
            details: { method: request.method, path, allowed },
          },
        });
      return;
    }
    void reply.code(404).send({
      error: {
        code: 'ROUTE_NOT_FOUND',
        reason: 'NotFound',
        message: `no route ${request.method} ${path}`,
        details: { method: request.method, path },
      },
    });
  });

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // before auth, which reads the database: a refused request costs next to nothing
  registerLoadShedding(app, d.limits, d.metrics.load);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    d.metrics.httpRequests.inc(labels);
    d.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        // a console token is a credential until it is spent: never in a log line
        url: request.url.startsWith(`${CONSOLE_WEBSOCKET_PATH}?`)
          ? `${CONSOLE_WEBSOCKET_PATH}?token=…`
          : request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  registerInputGuard(app);
  registerAuth(app, d.sessions, d.events);

  registerHealthRoutes(app, {
    db: d.db,
    readiness: d.readiness,
    version: d.version,
    nodeId: d.engine.nodeId,
    // health asks the database on a connection of its own, so it never queues behind the main pool
    ...(d.probe ? { ping: () => d.probe!.ping() } : {}),
  });

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    checkMetricsToken(request, d.metricsToken);
    const body = await d.metrics.registry.metrics();
    return reply.header('content-type', d.metrics.registry.contentType).send(body);
  });

  // public: a client is generated from it before it has a token (auth.ts isPublic)
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerEventStream(app, d.db, d.events);
  registerSimulatorRoutes(app, d.faults, d.simulator);
  registerConsoleRoutes(app, { db: d.db, tokens: new ConsoleTokens(d.db), consoles: d.consoles });
  for (const svc of d.services)
    registerKindRoutes(app, svc, { engine: d.engine, registry: d.registry, db: d.db, tags: d.tags });
  for (const svc of d.services) svc.routes?.(app);
  // the OpenStack-compatible API over the same services (src/openstack, docs/openstack.md)
  await registerOpenStackApi(app, {
    services: new Map(d.services.map((s) => [s.contract.kind, s])),
    engine: d.engine,
    registry: d.registry,
    db: d.db,
    sessions: d.sessions,
  });
  registerWebConsole(app); // the web console at / (web-console.ts)
  return app;
}
