/**
 * A minimal NFSv3 client (ONC RPC over TCP, AUTH_SYS as root) for the directory operations an
 * NFS primary storage needs and qemu-img does not do: mkdir, remove, rename, list, attributes, and
 * small whole-file reads/writes. Hosts here have no kernel NFS client and Debian's libnfs-utils
 * ships only nfs-ls/nfs-cp/nfs-cat, so the agent speaks the protocol itself (RFC 1813, RFC 5531,
 * RFC 1833 for the port lookup). Disk images themselves go through QEMU's libnfs (`nfs://` paths).
 *
 * One connection per NfsSession; calls run one at a time on it. Not a general client: no
 * retransmission (TCP), no locking, files read and written whole (records of a few hundred bytes).
 */
import { Socket } from 'node:net';
import { CloudError } from '../../kernel/errors.js';

const PROG_PORTMAP = 100000;
const PROG_MOUNT = 100005;
const PROG_NFS = 100003;

/** NFS3 status codes the storage reacts to (RFC 1813 §2.6). */
export const NFS3ERR = { NOENT: 2, EXIST: 17, NOTDIR: 20, ISDIR: 21, NOTEMPTY: 66 } as const;

class XdrWriter {
  private parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  opaque(data: Buffer): this {
    this.u32(data.length);
    this.parts.push(data);
    const pad = (4 - (data.length % 4)) % 4;
    if (pad) this.parts.push(Buffer.alloc(pad));
    return this;
  }
  fixed(data: Buffer): this {
    this.parts.push(data);
    return this;
  }
  string(s: string): this {
    return this.opaque(Buffer.from(s, 'utf8'));
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class XdrReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    return v;
  }
  opaque(): Buffer {
    const len = this.u32();
    const v = this.buf.subarray(this.at, this.at + len);
    this.at += len + ((4 - (len % 4)) % 4);
    return v;
  }
  fixed(len: number): Buffer {
    const v = this.buf.subarray(this.at, this.at + len);
    this.at += len;
    return v;
  }
  string(): string {
    return this.opaque().toString('utf8');
  }
  skip(len: number): void {
    this.at += len;
  }
}

export interface NfsAttributes {
  type: number; // 1 regular file, 2 directory
  size: number;
  /** bytes allocated on the server */
  used: number;
}

const FATTR3_BYTES = 84;

function readFattr(r: XdrReader): NfsAttributes {
  const type = r.u32();
  r.skip(16); // mode nlink uid gid
  const size = Number(r.u64());
  const used = Number(r.u64());
  r.skip(FATTR3_BYTES - 4 - 16 - 16);
  return { type, size, used };
}

function skipPostOpAttr(r: XdrReader): void {
  if (r.u32()) r.skip(FATTR3_BYTES);
}

/** An NFS3 call that answered a status other than OK. */
export class NfsStatusError extends Error {
  constructor(
    readonly status: number,
    what: string,
  ) {
    super(`${what}: NFS3 status ${status}`);
  }
}

/** The AUTH_SYS credential of root (the export must not squash root: the agent manages its files). */
function authSys(): Buffer {
  const body = new XdrWriter().u32(0).string('nimbus-agent').u32(0).u32(0).u32(0).done();
  return new XdrWriter().u32(1).opaque(body).done();
}

class RpcConnection {
  private socket: Socket | undefined;
  private xid = Math.floor(Math.random() * 0x7fffffff);
  private pending = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async open(): Promise<void> {
    const socket = new Socket();
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(this.port, this.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error(`connection to ${this.host}:${this.port} closed`)));
  }

  private fail(e: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 4) {
      const mark = this.pending.readUInt32BE(0);
      const len = mark & 0x7fffffff;
      if (this.pending.length < 4 + len) return;
      this.fragments.push(this.pending.subarray(4, 4 + len));
      this.pending = this.pending.subarray(4 + len);
      if (mark & 0x80000000) {
        const record = Buffer.concat(this.fragments);
        this.fragments = [];
        const w = this.waiter;
        this.waiter = undefined;
        w?.resolve(record);
      }
    }
  }

  /** One call; answers the reader positioned at the procedure's results. */
  async call(prog: number, vers: number, proc: number, args: Buffer): Promise<XdrReader> {
    const xid = ++this.xid >>> 0;
    const msg = new XdrWriter()
      .u32(xid)
      .u32(0) // CALL
      .u32(2) // RPC version
      .u32(prog)
      .u32(vers)
      .u32(proc)
      .fixed(authSys())
      .u32(0) // verifier AUTH_NONE
      .u32(0)
      .fixed(args)
      .done();
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE((0x80000000 | msg.length) >>> 0);
    const reply = new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.socket?.write(Buffer.concat([mark, msg]));
    const r = new XdrReader(await reply);
    if (r.u32() !== xid) throw new Error('RPC reply for another call');
    if (r.u32() !== 1) throw new Error('RPC: not a reply');
    if (r.u32() !== 0) throw new Error('RPC call denied (authentication refused)');
    r.u32(); // verifier flavor
    r.opaque();
    const accept = r.u32();
    if (accept !== 0) throw new Error(`RPC call not accepted (accept_stat ${accept})`);
    return r;
  }

  close(): void {
    this.socket?.destroy();
  }
}

export interface NfsTarget {
  host: string;
  /** the exported directory, as the server's MOUNT protocol knows it */
  exportPath: string;
}

/** `nfs://host/export[/…]` → host and the path (the storage's root on the server). */
export function parseNfsUrl(url: string): NfsTarget {
  const m = /^nfs:\/\/([^/:?#]+)(\/[^?#]*)$/.exec(url);
  if (!m?.[1] || !m[2]) {
    throw new CloudError('Invalid', 'STORAGE_URL_INVALID', `${url} is not an nfs://server/export URL`, {
      details: { field: 'storage.url', value: url },
    });
  }
  return { host: m[1], exportPath: m[2].replace(/\/+$/, '') || '/' };
}

async function portOf(host: string, prog: number, vers: number): Promise<number> {
  const pm = new RpcConnection(host, 111);
  await pm.open();
  try {
    const r = await pm.call(PROG_PORTMAP, 2, 3, new XdrWriter().u32(prog).u32(vers).u32(6).u32(0).done());
    const port = r.u32();
    if (!port) throw new Error(`program ${prog} v${vers} is not registered on ${host}`);
    return port;
  } finally {
    pm.close();
  }
}

/** A mounted export: paths are relative to its root ('' = the root), components joined by '/'. */
export class NfsSession {
  private constructor(
    private readonly nfs: RpcConnection,
    private readonly root: Buffer,
  ) {}

  static async open(target: NfsTarget): Promise<NfsSession> {
    try {
      const mountd = new RpcConnection(target.host, await portOf(target.host, PROG_MOUNT, 3));
      await mountd.open();
      let root: Buffer;
      try {
        const r = await mountd.call(PROG_MOUNT, 3, 1, new XdrWriter().string(target.exportPath).done());
        const status = r.u32();
        if (status !== 0) throw new Error(`MOUNT ${target.exportPath}: status ${status}`);
        root = Buffer.from(r.opaque());
      } finally {
        mountd.close();
      }
      const nfs = new RpcConnection(target.host, await portOf(target.host, PROG_NFS, 3));
      await nfs.open();
      return new NfsSession(nfs, root);
    } catch (e) {
      throw new CloudError(
        'Unavailable',
        'NFS_UNREACHABLE',
        `cannot mount nfs://${target.host}${target.exportPath}: ${(e as Error).message}`,
        { details: { host: target.host, export: target.exportPath }, retryable: true },
      );
    }
  }

  close(): void {
    this.nfs.close();
  }

  private async nfsCall(proc: number, args: Buffer, what: string): Promise<XdrReader> {
    const r = await this.nfs.call(PROG_NFS, 3, proc, args);
    const status = r.u32();
    if (status !== 0) throw new NfsStatusError(status, what);
    return r;
  }

  private static split(path: string): string[] {
    return path.split('/').filter((c) => c.length > 0);
  }

  private async lookupIn(dir: Buffer, name: string, path: string): Promise<Buffer> {
    const r = await this.nfsCall(3, new XdrWriter().opaque(dir).string(name).done(), `LOOKUP ${path}`);
    return Buffer.from(r.opaque());
  }

  /** The file handle of `path`; throws NfsStatusError(NOENT) when a component is missing. */
  async lookup(path: string): Promise<Buffer> {
    let fh = this.root;
    for (const c of NfsSession.split(path)) fh = await this.lookupIn(fh, c, path);
    return fh;
  }

  private async parent(path: string): Promise<{ dir: Buffer; name: string }> {
    const parts = NfsSession.split(path);
    const name = parts.pop();
    if (!name) throw new Error(`${path}: no file name`);
    return { dir: await this.lookup(parts.join('/')), name };
  }

  /** Attributes of `path`, or undefined when it does not exist. */
  async stat(path: string): Promise<NfsAttributes | undefined> {
    try {
      const fh = await this.lookup(path);
      return readFattr(await this.nfsCall(1, new XdrWriter().opaque(fh).done(), `GETATTR ${path}`));
    } catch (e) {
      if (e instanceof NfsStatusError && e.status === NFS3ERR.NOENT) return undefined;
      throw e;
    }
  }

  /** mkdir -p */
  async mkdirs(path: string): Promise<void> {
    let fh = this.root;
    for (const c of NfsSession.split(path)) {
      const sattr = new XdrWriter().u32(1).u32(0o755).u32(0).u32(0).u32(0).u32(0).u32(0).done();
      try {
        const r = await this.nfsCall(
          9,
          new XdrWriter().opaque(fh).string(c).fixed(sattr).done(),
          `MKDIR ${path}`,
        );
        fh = r.u32() ? Buffer.from(r.opaque()) : await this.lookupIn(fh, c, path);
      } catch (e) {
        if (!(e instanceof NfsStatusError && e.status === NFS3ERR.EXIST)) throw e;
        fh = await this.lookupIn(fh, c, path);
      }
    }
  }

  /** Removes a file; a missing one (or missing directory) is success. */
  async remove(path: string): Promise<void> {
    try {
      const { dir, name } = await this.parent(path);
      await this.nfsCall(12, new XdrWriter().opaque(dir).string(name).done(), `REMOVE ${path}`);
    } catch (e) {
      if (!(e instanceof NfsStatusError && e.status === NFS3ERR.NOENT)) throw e;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const a = await this.parent(from);
    const b = await this.parent(to);
    await this.nfsCall(
      14,
      new XdrWriter().opaque(a.dir).string(a.name).opaque(b.dir).string(b.name).done(),
      `RENAME ${from} ${to}`,
    );
  }

  /** Names in a directory (without . and ..); a missing directory lists nothing. */
  async list(path: string): Promise<string[]> {
    let dir: Buffer;
    try {
      dir = await this.lookup(path);
    } catch (e) {
      if (e instanceof NfsStatusError && e.status === NFS3ERR.NOENT) return [];
      throw e;
    }
    const names: string[] = [];
    let cookie = 0n;
    let verf = Buffer.alloc(8);
    for (;;) {
      const r = await this.nfsCall(
        16,
        new XdrWriter().opaque(dir).u64(cookie).fixed(verf).u32(32768).done(),
        `READDIR ${path}`,
      );
      skipPostOpAttr(r);
      verf = Buffer.from(r.fixed(8));
      while (r.u32()) {
        r.u64(); // fileid
        const name = r.string();
        cookie = r.u64();
        if (name !== '.' && name !== '..') names.push(name);
      }
      if (r.u32()) return names;
    }
  }

  /** A small file's whole content, or undefined when it does not exist. */
  async readFile(path: string): Promise<Buffer | undefined> {
    let fh: Buffer;
    try {
      fh = await this.lookup(path);
    } catch (e) {
      if (e instanceof NfsStatusError && e.status === NFS3ERR.NOENT) return undefined;
      throw e;
    }
    const chunks: Buffer[] = [];
    let offset = 0n;
    for (;;) {
      const r = await this.nfsCall(
        6,
        new XdrWriter().opaque(fh).u64(offset).u32(65536).done(),
        `READ ${path}`,
      );
      skipPostOpAttr(r);
      r.u32(); // count
      const eof = r.u32();
      const data = Buffer.from(r.opaque());
      chunks.push(data);
      offset += BigInt(data.length);
      if (eof || data.length === 0) return Buffer.concat(chunks);
    }
  }

  /** Creates (or truncates) `path` and writes `data` with FILE_SYNC. */
  async writeFile(path: string, data: Buffer): Promise<void> {
    const { dir, name } = await this.parent(path);
    // UNCHECKED create with size 0: creates, or truncates an existing file
    const sattr = new XdrWriter().u32(1).u32(0o644).u32(0).u32(0).u32(1).u64(0).u32(0).u32(0).done();
    const r = await this.nfsCall(
      8,
      new XdrWriter().opaque(dir).string(name).u32(0).fixed(sattr).done(),
      `CREATE ${path}`,
    );
    const fh = r.u32() ? Buffer.from(r.opaque()) : await this.lookupIn(dir, name, path);
    await this.nfsCall(
      7,
      new XdrWriter().opaque(fh).u64(0).u32(data.length).u32(2).opaque(data).done(),
      `WRITE ${path}`,
    );
  }
}
