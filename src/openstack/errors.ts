/**
 * OpenStack error bodies. Each service family answers failures in its own shape (see the API
 * references): Nova and Cinder `{"<fault>": {"code", "message"}}`, Neutron
 * `{"NeutronError": {"type", "message", "detail"}}`, Keystone `{"error": {"code", "message",
 * "title"}}`, Glance `{"message", "code", "title"}`-like text. The status always comes from the
 * CloudError's reason (kernel/errors.ts, the one table); our searchable error code is kept in the
 * message so a user can still look it up.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { failureOf } from '../api/errors.js';
import type { CloudError } from '../kernel/errors.js';

export type ErrorStyle = 'nova' | 'neutron' | 'keystone' | 'glance';

const NOVA_FAULT: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'notAllowed',
  409: 'conflictingRequest',
  413: 'overLimit',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

const TITLE: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

function messageOf(ce: CloudError): string {
  const fields = (ce.details?.fields ?? []) as { field: string; problem: string }[];
  const list = fields.map((f) => `${f.field}: ${f.problem}`).join('; ');
  return `${ce.message}${list && !ce.message.includes(list) ? ` (${list})` : ''} [${ce.code}]`;
}

/** the body of one failure in a family's shape */
export function openStackErrorBody(style: ErrorStyle, ce: CloudError): Record<string, unknown> {
  const status = ce.status;
  const message = messageOf(ce);
  switch (style) {
    case 'nova':
      return { [NOVA_FAULT[status] ?? 'computeFault']: { code: status, message } };
    case 'neutron':
      return { NeutronError: { type: neutronType(ce), message, detail: '' } };
    case 'keystone':
      return { error: { code: status, message, title: TITLE[status] ?? 'Error' } };
    case 'glance':
      return { code: status, title: TITLE[status] ?? 'Error', message };
  }
}

/** `NETWORK_NOT_FOUND` → `NetworkNotFound`, as Neutron names its exceptions */
function neutronType(ce: CloudError): string {
  return ce.code
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : w))
    .join('');
}

/** sets a scope's error and not-found handlers to answer in `style` */
export function useOpenStackErrors(scope: FastifyInstance, style: ErrorStyle): void {
  scope.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const ce = failureOf(err, request, reply);
    void reply.code(ce.status).send(openStackErrorBody(style, ce));
  });
}
