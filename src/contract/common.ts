/** Wire shapes shared by every kind: ids, names, errors, jobs, list pages, tags. */
import { type Static, type TSchema, Type } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', description: 'resource UUID' });
export const Name = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^\\S(.*\\S)?$',
  description: 'name (no leading or trailing spaces)',
});
export const Description = Type.String({ maxLength: 2048 });
export const Timestamp = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/**
 * Bounds of integers on the wire. Sizes and counts live in bigint columns, but JSON numbers are
 * exact only up to 2^53−1, so that is their bound; `int` columns (CPUs, ports, VLANs…) hold
 * 2^31−1. A request schema's integer without a maximum gets MAX_JSON_INTEGER (api/input-guard.ts).
 */
export const MAX_JSON_INTEGER = Number.MAX_SAFE_INTEGER;
export const MAX_INT32 = 2 ** 31 - 1;
/** Sizes are integers in bytes on the wire; the CLI accepts suffixes (512M, 64G, 1T). */
export const Bytes = (description: string, minimum = 0) =>
  Type.Integer({ minimum, maximum: MAX_JSON_INTEGER, description, 'x-unit': 'bytes' });
/** A count or limit stored in a bigint column. */
export const BigCount = (description: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_JSON_INTEGER, description });

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable, searchable code, e.g. HOST_NOT_FOUND' }),
      reason: Type.String({
        description:
          'NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Unauthenticated, Unavailable, Timeout or Internal',
      }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorBody' },
);

export const JOB_STATES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const;
export const Job = Type.Object({
  uuid: Uuid,
  kind: Type.String({ description: 'operation, e.g. host.create' }),
  state: Type.Enum(JOB_STATES),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  progressMessage: Nullable(Type.String()),
  resourceKind: Nullable(Type.String()),
  resourceUuid: Nullable(Uuid),
  accountUuid: Uuid,
  userUuid: Nullable(Uuid),
  result: Type.Unknown(),
  error: Type.Unknown(),
  steps: Type.Optional(
    Type.Object({
      phase: Type.String(),
      done: Type.Array(Type.String()),
      current: Nullable(Type.String()),
      rolledBack: Type.Optional(
        Type.Array(Type.String(), {
          description: 'rollback phase: the steps undone so far, in the order they were undone',
        }),
      ),
    }),
  ),
  requestId: Nullable(Type.String()),
  secrets: Type.Optional(
    Type.Record(Type.String(), Type.String(), {
      description:
        'values shown only in the answer to the request that made them (a generated password or secret); never stored, never shown again',
    }),
  ),
  createdAt: Timestamp,
  startedAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
  updatedAt: Timestamp,
});
export type Job = Static<typeof Job>;

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    limit: Type.Integer(),
    offset: Type.Integer(),
    total: Type.Optional(Type.Integer({ description: 'present when count=true' })),
  });

export const TagBody = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:/-]+$' }),
    value: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export type TagBody = Static<typeof TagBody>;

export const Tag = Type.Object({
  uuid: Uuid,
  resourceKind: Type.String(),
  resourceUuid: Uuid,
  accountUuid: Uuid,
  key: Type.String(),
  value: Nullable(Type.String()),
  createdAt: Timestamp,
});

export const Event = Type.Object({
  id: Type.String({ description: 'monotonic sequence number; resume a stream after it with ?after=' }),
  uuid: Uuid,
  at: Timestamp,
  type: Type.String({ description: 'e.g. host.status.changed, job.state.changed' }),
  resourceKind: Type.String(),
  resourceUuid: Uuid,
  accountUuid: Uuid,
  jobUuid: Nullable(Uuid),
  data: Type.Record(Type.String(), Type.Unknown()),
});

export const Empty = Type.Object({}, { additionalProperties: false });

/** Fields every resource has. */
export const base = {
  uuid: Uuid,
  name: Name,
  description: Nullable(Type.String()),
  accountUuid: Uuid,
  createdAt: Timestamp,
  updatedAt: Timestamp,
};
export const EnabledState = Type.Enum(['Enabled', 'Disabled']);
export const enableDisable = {
  enable: { summary: 'enable it (new work may be placed on it)', body: Empty },
  disable: { summary: 'disable it (running work stays, nothing new is placed)', body: Empty },
};
/** request bodies refuse unknown fields */
export const strict = { additionalProperties: false } as const;

/** A reference to another resource by uuid (the CLI also takes its name: `--<kind> <name>`). */
export const RefUuid = (description: string) => Type.String({ format: 'uuid', description });
/** A non-empty list of distinct uuids. */
export const UuidList = (description: string) =>
  Type.Array(Type.String({ format: 'uuid' }), { minItems: 1, maxItems: 100, uniqueItems: true, description });
/** An IPv4 or IPv6 address as text (parsed and checked by the service). */
export const IpText = (description: string) => Type.String({ minLength: 2, maxLength: 45, description });
export const Port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });
/** The update body of kinds whose only changeable fields are name and description. */
export const RenameBody = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  strict,
);
