/**
 * qemu-img (and the other storage tools) as the storage backends call them: argument lists are
 * built by pure functions (unit-tested), a tool runs without a shell (arguments never pass through
 * one), and its failure becomes a CloudError that keeps the tool's own message. A failure to take
 * QEMU's image lock (a running VM holds the disk) is told apart: STORAGE_VOLUME_IN_USE, so a caller
 * can hand the operation to the running VM instead (see LiveDiskHooks).
 */
import { spawn } from 'node:child_process';
import { CloudError } from '../../kernel/errors.js';

export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** QEMU's message when another process (a running VM) holds the image's lock. */
export function isLockError(stderr: string): boolean {
  return /Failed to get ".*" lock|Is another process using the image/.test(stderr);
}

/** Runs a tool; rejects with STORAGE_TOOL_FAILED (or STORAGE_VOLUME_IN_USE) naming the command. */
export function runTool(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10 * 60_000);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new CloudError(
          'Unavailable',
          'STORAGE_TOOL_MISSING',
          `cannot run ${cmd}: ${e.code === 'ENOENT' ? 'not installed' : e.message}`,
          { details: { cmd } },
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const why = stderr.trim() || stdout.trim() || `exit ${code ?? signal}`;
      const inUse = isLockError(stderr);
      reject(
        new CloudError(
          inUse ? 'Conflict' : 'Internal',
          inUse ? 'STORAGE_VOLUME_IN_USE' : 'STORAGE_TOOL_FAILED',
          `${cmd} ${args[0] ?? ''}: ${why}`,
          { details: { cmd, args, exitCode: code, signal } },
        ),
      );
    });
  });
}

export type DiskFormat = 'qcow2' | 'raw';

/** `qemu-img create`: an empty disk, or a copy-on-write clone of `backing` (always qcow2 in the cache). */
export function createArgs(path: string, format: DiskFormat, size: number, backing?: string): string[] {
  const args = ['create', '-q', '-f', format];
  if (backing !== undefined) args.push('-b', backing, '-F', 'qcow2');
  args.push(path, String(size));
  return args;
}

/** `qemu-img info`: JSON, and `-U` (force share) so a disk a running VM holds can still be read. */
export function infoArgs(path: string, opts: { format?: DiskFormat; chain?: boolean } = {}): string[] {
  const args = ['info', '--output=json', '-U'];
  if (opts.format) args.push('-f', opts.format);
  if (opts.chain) args.push('--backing-chain');
  args.push(path);
  return args;
}

export function resizeArgs(path: string, format: DiskFormat, size: number): string[] {
  return ['resize', '-q', '-f', format, path, String(size)];
}

export type SnapshotOp = 'create' | 'apply' | 'delete' | 'list';
const SNAPSHOT_FLAG: Record<Exclude<SnapshotOp, 'list'>, string> = {
  create: '-c',
  apply: '-a',
  delete: '-d',
};

/** Internal qcow2 snapshots; listing reads with -U (a running VM may hold the disk). */
export function snapshotArgs(op: SnapshotOp, path: string, name?: string): string[] {
  // (qemu-img 7.2's snapshot takes no -f: the format is probed; only qcow2 volumes get here)
  if (op === 'list') return ['snapshot', '-U', '-l', path];
  if (name === undefined) throw new Error(`snapshot ${op} needs a name`);
  return ['snapshot', '-q', SNAPSHOT_FLAG[op], name, path];
}

/**
 * `qemu-img convert` to a standalone qcow2 (the backing chain flattened). `snapshot`: read that
 * internal snapshot instead of the current data (snapshots do not change, so reading one while a VM
 * runs is safe and uses -U; the live disk itself is only read when no VM holds it).
 */
export function convertArgs(
  source: string,
  sourceFormat: DiskFormat | undefined,
  target: string,
  snapshot?: string,
): string[] {
  const args = ['convert', '-O', 'qcow2'];
  if (sourceFormat) args.push('-f', sourceFormat);
  if (snapshot !== undefined) args.push('-U', '-l', `snapshot.name=${snapshot}`);
  args.push(source, target);
  return args;
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  /** allocated bytes, when the protocol reports them */
  actualSize: number | undefined;
  backingFilename: string | undefined;
}

/** The fields of `qemu-img info --output=json` the backends use (first image of a chain). */
export function parseInfo(json: string): ImageInfo {
  const raw = JSON.parse(json) as unknown;
  const first = (Array.isArray(raw) ? raw[0] : raw) as Record<string, unknown>;
  return {
    format: String(first.format),
    virtualSize: Number(first['virtual-size']),
    actualSize: typeof first['actual-size'] === 'number' ? first['actual-size'] : undefined,
    backingFilename:
      typeof first['backing-filename'] === 'string' ? (first['backing-filename'] as string) : undefined,
  };
}

/** Names of the internal snapshots in `qemu-img snapshot -l` output. */
export function parseSnapshotList(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    // "ID  TAG  VM SIZE  DATE  VM CLOCK  ICOUNT": rows start with a numeric id
    const m = /^\s*\d+\s+(\S+)\s/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

export async function imageInfo(path: string, format?: DiskFormat): Promise<ImageInfo> {
  const { stdout } = await runTool('qemu-img', infoArgs(path, format ? { format } : {}));
  return parseInfo(stdout);
}

export async function snapshotNames(path: string): Promise<string[]> {
  const { stdout } = await runTool('qemu-img', snapshotArgs('list', path));
  return parseSnapshotList(stdout);
}
