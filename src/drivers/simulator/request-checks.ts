/**
 * The simulator refuses a malformed host command the way nimbus-agent does: before it touches
 * its world, as Invalid, with the agent's code and the bad field named (`details.field`, or
 * `details.fields` for a VM spec). Only the fields the agent checks before acting are checked
 * here; test/conformance runs the same malformed bodies against both, so the two stay one.
 * Codes (the agent's): AGENT_REQUEST_INVALID, AGENT_VM_UUID_INVALID, AGENT_VM_SPEC_INVALID,
 * HOST_NETWORK_VERSION_INVALID, HOST_{BRIDGE,DHCP,SG}_SPEC_INVALID, STORAGE_TYPE_UNSUPPORTED,
 * STORAGE_NAME_INVALID, IMAGE_CHECKSUM_INVALID.
 */
import type { AgentCommand } from '../../contract/agent.js';
import { CloudError, invalidField } from '../../kernel/errors.js';

type Body = Record<string, unknown>;

const VM_UUID = /^[0-9a-fA-F-]{8,64}$/;
const STORAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const STORAGE_TYPES = new Set(['local', 'nfs', 'shared-mount', 'ceph']);
const SHA256 = /^[0-9a-fA-F]{64}$/;
const MIB = 1024 * 1024;

const refuse = (code: string, field: string, message: string) =>
  new CloudError('Invalid', code, message, { details: { field } });

const isObject = (v: unknown): v is Body => v !== null && typeof v === 'object' && !Array.isArray(v);

function object(value: unknown, field: string): Body {
  if (!isObject(value)) throw refuse('AGENT_REQUEST_INVALID', field, `${field} must be an object`);
  return value;
}

function text(value: unknown, field: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512)
    throw refuse('AGENT_REQUEST_INVALID', field, `${field} must be a non-empty string`);
}

function vmUuid(value: unknown, field = 'vmUuid'): void {
  if (typeof value !== 'string' || !VM_UUID.test(value))
    throw refuse('AGENT_VM_UUID_INVALID', field, `${field} must be a uuid`);
}

function vmSpec(value: unknown): void {
  const vm = object(value, 'vm');
  vmUuid(vm.uuid, 'vm.uuid');
  const cpu = vm.cpu as number;
  const memory = vm.memory as number;
  if (!Number.isInteger(cpu) || cpu < 1 || cpu > 255)
    throw invalidField('vm.cpu', 'must be 1–255', 'AGENT_VM_SPEC_INVALID');
  if (!Number.isInteger(memory) || memory < 16 * MIB || memory % MIB !== 0)
    throw invalidField(
      'vm.memory',
      'must be bytes, a whole number of MiB, at least 16 MiB',
      'AGENT_VM_SPEC_INVALID',
    );
  for (const list of ['volumes', 'nics'])
    if (!Array.isArray(vm[list])) throw invalidField(`vm.${list}`, 'must be a list', 'AGENT_VM_SPEC_INVALID');
}

function version(value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw refuse(
      'HOST_NETWORK_VERSION_INVALID',
      'version',
      `version must be a positive integer, got ${value}`,
    );
}

function list(value: unknown, field: string, code: string): void {
  if (!Array.isArray(value)) throw refuse(code, field, `${field}: a list is required`);
}

function storage(value: unknown): void {
  const type = isObject(value) ? value.type : undefined;
  if (typeof type !== 'string' || !STORAGE_TYPES.has(type))
    throw refuse(
      'STORAGE_TYPE_UNSUPPORTED',
      'storage.type',
      `no backend for ${String(type)} primary storage`,
    );
}

function storageName(value: unknown, field: string): void {
  if (typeof value !== 'string' || !STORAGE_NAME.test(value))
    throw refuse('STORAGE_NAME_INVALID', field, `${field} must be a plain identifier (a uuid)`);
}

const onVm = (b: Body) => vmUuid(b.vmUuid);
const onStorage =
  (...names: string[]) =>
  (b: Body) => {
    storage(b.storage);
    for (const n of names) storageName(b[n], n);
  };

const CHECKS: { [C in AgentCommand]?: (body: Body) => void } = {
  'vm.start': (b) => vmSpec(b.vm),
  'vm.stop': onVm,
  'vm.reboot': onVm,
  'vm.pause': onVm,
  'vm.resume': onVm,
  'vm.destroy': onVm,
  'vm.serial-log': (b) => {
    vmUuid(b.vmUuid);
    if (!Number.isInteger(b.tailBytes) || (b.tailBytes as number) < 1)
      throw refuse(
        'AGENT_REQUEST_INVALID',
        'tailBytes',
        'tailBytes must be a whole number of bytes, at least 1',
      );
  },
  'vm.migrate': (b) => {
    vmUuid(b.vmUuid);
    text(b.target, 'target');
  },
  'vm.attach-volume': (b) => {
    vmUuid(b.vmUuid);
    object(b.volume, 'volume');
  },
  'vm.detach-volume': (b) => {
    vmUuid(b.vmUuid);
    text(b.volumeUuid, 'volumeUuid');
  },
  'vm.resize-volume': (b) => {
    vmUuid(b.vmUuid);
    text(b.volumeUuid, 'volumeUuid');
  },
  'vm.attach-nic': (b) => {
    vmUuid(b.vmUuid);
    object(b.nic, 'nic');
  },
  'vm.detach-nic': (b) => {
    vmUuid(b.vmUuid);
    text(b.nicUuid, 'nicUuid');
  },
  'network.ensure-bridges': (b) => {
    version(b.version);
    list(b.bridges, 'bridges', 'HOST_BRIDGE_SPEC_INVALID');
  },
  'dhcp.set-entries': (b) => {
    version(b.version);
    list(b.networks, 'networks', 'HOST_DHCP_SPEC_INVALID');
  },
  'sg.apply': (b) => {
    version(b.version);
    list(b.nics, 'nics', 'HOST_SG_SPEC_INVALID');
  },
  'router.apply-config': (b) => {
    version(b.version);
    text(object(b.config, 'config').routerUuid, 'config.routerUuid');
  },
  'router.status': (b) => text(b.routerUuid, 'routerUuid'),
  'image.cache': (b) => {
    onStorage('imageUuid')(b);
    if (b.sha256 !== undefined && (typeof b.sha256 !== 'string' || !SHA256.test(b.sha256)))
      throw refuse('IMAGE_CHECKSUM_INVALID', 'sha256', 'sha256 must be 64 hex digits (a sha256)');
  },
  'image.uncache': onStorage('imageUuid'),
  'image.upload': onStorage('imageUuid'),
  'volume.create': onStorage('volumeUuid'),
  'volume.delete': onStorage('volumeUuid'),
  'volume.resize': onStorage('volumeUuid'),
  'snapshot.create': onStorage('volumeUuid', 'snapshotUuid'),
  'snapshot.delete': onStorage('snapshotUuid'),
  'snapshot.revert': onStorage('volumeUuid', 'snapshotUuid'),
};

/** Throws the agent's Invalid error for a malformed request; a well-formed one passes untouched. */
export function checkRequest(command: AgentCommand, request: unknown): void {
  if (!isObject(request)) {
    throw new CloudError(
      'Invalid',
      'AGENT_BODY_MALFORMED',
      'body must be a JSON object (the command request)',
    );
  }
  CHECKS[command]?.(request);
}
