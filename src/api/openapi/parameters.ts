/**
 * The query parameters of every collection (engine/query/parse.ts reads exactly these and refuses
 * any other, naming it) and the `wait` of every route that answers with a job.
 */
import { DEFAULT_LIMIT, MAX_CONDITIONS, MAX_LIMIT } from '../../engine/query/parse.js';

export const LIST_PARAMETERS = [
  {
    name: 'q',
    in: 'query',
    description:
      'a condition `<field><op><value>`, repeatable (all must hold). Operators: = != > >= < <= ~= (like, % wildcards) !~= ?= (in a comma list) !?= =null !=null. Fields may be nested through relations (`cluster.zone.name=z1`); `tag=key` or `tag=key=value` matches tags. ' +
      `At most ${MAX_CONDITIONS} conditions.`,
    schema: { type: 'array', items: { type: 'string' }, maxItems: MAX_CONDITIONS },
    style: 'form',
    explode: true,
  },
  {
    name: 'sort',
    in: 'query',
    description:
      "fields to order by, comma-separated, `-` for descending (default: the kind's natural order)",
    schema: { type: 'string', example: '-createdAt,name' },
  },
  {
    name: 'limit',
    in: 'query',
    description: `items per page (default ${DEFAULT_LIMIT})`,
    schema: { type: 'integer', minimum: 0, maximum: MAX_LIMIT },
  },
  {
    name: 'offset',
    in: 'query',
    description: 'items to skip',
    schema: { type: 'integer', minimum: 0 },
  },
  {
    name: 'count',
    in: 'query',
    description: 'also answer `total`, the number of matching items',
    schema: { type: 'boolean' },
  },
  {
    name: 'fields',
    in: 'query',
    description: 'only these fields of each item, comma-separated',
    schema: { type: 'string', example: 'uuid,name,state' },
  },
] as const;

export const WAIT_PARAMETER = {
  name: 'wait',
  in: 'query',
  description:
    '`true` (or `1`): answer when the job has ended (200 with the finished job), or after 60 s with the running job (202)',
  schema: { type: 'boolean' },
} as const;
