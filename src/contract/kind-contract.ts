/**
 * The shape every API kind's contract has (path, CLI noun, bodies, actions). A file of its own so
 * the family contracts and the registry (kinds.ts) can both import it without importing each other.
 * A kind whose resource the web console reads by field (hosts, vms, …) is declared
 * `satisfies KindContract` rather than `: KindContract`, so `Static<typeof hosts.resource>` keeps its fields.
 */
import type { TObject } from 'typebox';

export interface KindContract {
  /** plural kebab-case path segment: /v1/<kind> */
  kind: string;
  /** CLI noun: `nimbus <singular> list` */
  singular: string;
  summary: string;
  resource: TObject;
  create?: TObject;
  update?: TObject;
  /** POST /v1/<kind>/{uuid}/actions/<name> */
  /**
   * `tenant`: on an adminOnly kind, open to every account that sees the resource; `admin`: on any
   * other kind, the admin's only (the service enforces it; clients hide it from tenants).
   */
  actions?: Record<string, { summary: string; body: TObject; tenant?: boolean; admin?: boolean }>;
  deletable: boolean;
  taggable: boolean;
  /** columns of the CLI's table output */
  columns: string[];
  /** only the admin account may create, change or delete these (and run actions not marked `tenant`) */
  adminOnly: boolean;
  /**
   * Rules between fields of the create body that the service enforces (naming each field in its
   * own words), said in JSON Schema for the API document: merged into the documented request body
   * (api/openapi/complete.ts), not into the validator, so a refusal keeps the service's message.
   * test/scenario/openapi-rules.test.ts sends bodies on both sides of each rule and checks that
   * the document and the server agree.
   */
  createRules?: Record<string, unknown>;
}
