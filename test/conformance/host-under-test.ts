/**
 * What the conformance scenarios drive: one host that answers the host commands of
 * src/contract/agent.ts, whichever implementation is behind it (the simulator in-process, or a
 * real nimbus-agent over HTTP). The scenarios see only this interface, so the two runners execute
 * the very same assertions. A command's refusal is an Outcome, never a throw: scenarios compare
 * error codes and reasons, which is the part of the contract both sides must agree on.
 */
import assert from 'node:assert/strict';
import type { StorageRef } from '../../src/contract/agent.js';
import type { ErrorBody } from '../../src/kernel/errors.js';

export type Outcome = { ok: true; body: Record<string, unknown> } | { ok: false; error: ErrorBody };

export interface HostFixtures {
  /** an image the host can fetch (image.cache) and boot a VM from; its sha256 when known */
  image: { url: string; sha256?: string };
  /** a primary storage the host can create volumes on */
  storage: StorageRef;
  /** two interfaces no-vlan bridges may enslave (the guest and the public L2) */
  uplinks: [string, string];
  /** the names those bridges get (at most 15 characters, unique on the machine) */
  bridges: [string, string];
  /** addresses on the guest bridge's subnet (10.x.y.0/24): .1 gateway, .2 DHCP server, .10+ VMs */
  subnet: string;
}

export interface HostUnderTest {
  readonly kind: 'simulator' | 'agent';
  readonly fixtures: HostFixtures;
  /** sends one command with `body` as it is (malformed bodies included) */
  send(command: string, body: unknown): Promise<Outcome>;
  /**
   * resolves once the guest of a VM just started has booted far enough to answer ACPI and PCI
   * hot-plug (immediate on the simulator; the guest's serial log on a real host)
   */
  guestReady(vmUuid: string): Promise<void>;
}

/** the response of a command that must succeed (fails the test with the error otherwise) */
export async function ok<T = Record<string, unknown>>(
  host: HostUnderTest,
  command: string,
  body: unknown,
): Promise<T> {
  const out = await host.send(command, body);
  if (!out.ok) assert.fail(`${command} failed on the ${host.kind}: ${JSON.stringify(out.error)}`);
  return out.body as T;
}

/** the error of a command that must fail */
export async function refused(host: HostUnderTest, command: string, body: unknown): Promise<ErrorBody> {
  const out = await host.send(command, body);
  if (out.ok)
    assert.fail(
      `${command} succeeded on the ${host.kind}, a refusal was expected: ${JSON.stringify(out.body)}`,
    );
  return out.error;
}

/**
 * whether an Invalid error names `field`: as details.field, in details.fields (kernel `invalid`),
 * or at the head of one of details.problems ("bridges[0].mtu: …"); the wire has those three forms
 */
export function namesField(error: ErrorBody, field: string): boolean {
  const d = error.details ?? {};
  if (d.field === field) return true;
  const fields = Array.isArray(d.fields) ? (d.fields as Array<{ field?: unknown }>) : [];
  if (fields.some((f) => f.field === field)) return true;
  const problems = Array.isArray(d.problems) ? (d.problems as unknown[]) : [];
  return problems.some((p) => typeof p === 'string' && p.startsWith(field));
}

/** one version counter per host: network commands must be newer than the last applied */
export function versions(): () => number {
  let v = 0;
  return () => {
    v += 1;
    return v;
  };
}
