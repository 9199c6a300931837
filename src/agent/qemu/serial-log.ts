/**
 * A VM's serial console output on this host: QEMU writes it to `serial.log` in the VM's
 * directory (a file chardev, append=on: command-line.ts), from boot to power-off, across
 * restarts. A file chardev has no size limit, so the agent keeps it bounded: before each start
 * and at each read, a file over `keep` bytes is cut to its last half of `keep` (the cut is made
 * in place: QEMU appends with O_APPEND, so it carries on at the new end; what the guest writes
 * during the cut itself may be lost). `vm.serial-log` answers the last `tailBytes` of it.
 */
import { open, stat } from 'node:fs/promises';
import { invalidField } from '../../kernel/errors.js';

/** what the agent keeps of a serial log (contract/compute.ts SERIAL_LOG_KEEP_BYTES) */
export const SERIAL_KEEP_BYTES = 4 * 1024 * 1024;

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Cuts the file to its last keep/2 bytes when it holds more than `keep`. */
export async function trimSerialLog(path: string, keep = SERIAL_KEEP_BYTES): Promise<void> {
  const size = await sizeOf(path);
  if (size === undefined || size <= keep) return;
  const f = await open(path, 'r+');
  try {
    const tail = Buffer.alloc(Math.floor(keep / 2));
    const { bytesRead } = await f.read(tail, 0, tail.length, size - tail.length);
    await f.truncate(0);
    await f.write(tail, 0, bytesRead, 0);
  } finally {
    await f.close();
  }
}

/** The last `tailBytes` of the log (none yet: empty) and the bytes kept. */
export async function readSerialTail(
  path: string,
  tailBytes: unknown,
  keep = SERIAL_KEEP_BYTES,
): Promise<{ log: string; size: number }> {
  if (typeof tailBytes !== 'number' || !Number.isInteger(tailBytes) || tailBytes < 1)
    throw invalidField('tailBytes', 'must be a whole number of bytes, at least 1', 'AGENT_REQUEST_INVALID');
  await trimSerialLog(path, keep);
  const size = await sizeOf(path);
  if (size === undefined || size === 0) return { log: '', size: 0 };
  const f = await open(path, 'r');
  try {
    const want = Math.min(size, tailBytes);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await f.read(buf, 0, want, size - want);
    return { log: buf.subarray(0, bytesRead).toString('utf8'), size };
  } finally {
    await f.close();
  }
}
