/**
 * Fencing through a host's BMC with `ipmitool` (Debian package `ipmitool`): `chassis power off`,
 * then `chassis power status` until it says off. The password goes in the environment
 * (`-E`, ipmitool reads IPMI_PASSWORD), never on the command line: a `-P` argument is readable
 * by every local user in /proc/<pid>/cmdline and in `ps`. Nothing here logs the password.
 */
import { execFile } from 'node:child_process';
import { CloudError } from '../../kernel/errors.js';
import type { FenceDriver, FenceOutcome, FenceTarget, IpmiCredentials } from './port.js';

export interface IpmiOptions {
  /** the ipmitool program (default: `ipmitool` on PATH) */
  command?: string;
  /** one ipmitool call may take this long */
  timeoutMs?: number;
  /** how many status reads wait for the power to go off, and the pause between them */
  statusAttempts?: number;
  statusPauseMs?: number;
}

export class IpmiFence implements FenceDriver {
  readonly method = 'ipmi' as const;

  constructor(private readonly o: IpmiOptions = {}) {}

  async fence(target: FenceTarget): Promise<FenceOutcome> {
    const ipmi = target.ipmi;
    if (!ipmi)
      throw new CloudError(
        'Invalid',
        'HOST_FENCE_UNAVAILABLE',
        `host ${target.uuid} has no IPMI credentials`,
      );
    await this.run(ipmi, ['chassis', 'power', 'off']);
    const attempts = this.o.statusAttempts ?? 10;
    let last = '';
    for (let i = 0; i < attempts; i++) {
      last = (await this.run(ipmi, ['chassis', 'power', 'status'])).trim();
      if (/\bpower is off\b/i.test(last))
        return { state: 'fenced', method: this.method, detail: `BMC ${ipmi.address}: ${last}` };
      await new Promise((r) => setTimeout(r, this.o.statusPauseMs ?? 1000));
    }
    throw new CloudError(
      'Unavailable',
      'HOST_FENCE_FAILED',
      `BMC ${ipmi.address} still says '${last}' after power off`,
      { details: { address: ipmi.address }, retryable: true },
    );
  }

  private run(ipmi: IpmiCredentials, args: string[]): Promise<string> {
    const argv = ['-I', 'lanplus', '-H', ipmi.address, '-U', ipmi.username, '-E', ...args];
    return new Promise((resolve, reject) => {
      execFile(
        this.o.command ?? 'ipmitool',
        argv,
        {
          env: { ...process.env, IPMI_PASSWORD: ipmi.password },
          timeout: this.o.timeoutMs ?? 30_000,
        },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const why = (stderr || err.message).trim().split('\n').slice(-1)[0] ?? '';
          reject(
            new CloudError(
              'Unavailable',
              'HOST_FENCE_FAILED',
              `ipmitool ${args.join(' ')} on BMC ${ipmi.address} failed: ${why}`,
              {
                details: { address: ipmi.address },
                retryable: true,
              },
            ),
          );
        },
      );
    });
  }
}
