/**
 * Glance v2 at /image (docs/openstack.md "Images"): versions, images list/show/create/update/
 * delete, data upload and download. An image is a Nimbus image; Glance's two-step create (the
 * record, then `PUT …/file`) is kept by the façade's record (openstack_images, view.ts): the
 * upload is staged to a file on this node and the Nimbus image is made from it with the same id,
 * by the image.create chain (the backup storage downloads it from the file URL).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerOf } from '../../api/auth.js';
import { getVisibleRow } from '../../engine/query/index.js';
import type { Caller } from '../../kernel/caller.js';
import { CloudError, forbidden, invalidField } from '../../kernel/errors.js';
import { isUuid, newId } from '../../kernel/ids.js';
import { imageSourceOf } from '../../resources/storage/backup-storage/image-source.js';
import type { ImageService } from '../../resources/storage/image/service.js';
import { requireToken } from '../auth.js';
import { OPENSTACK_PREFIX, type OpenStackDeps, type OpenStackService } from '../deps.js';
import { useOpenStackErrors } from '../errors.js';
import { listPage } from '../listing.js';
import { baseUrl } from '../urls.js';
import { type GlanceRecord, imageView, propertiesOf } from './view.js';

type Obj = Record<string, unknown>;
const GiB = 1024 ** 3;
const UPLOAD_WAIT_MS = 5 * 60_000;
const FORMATS = ['qcow2', 'raw', 'iso'];
/** what POST /v2/images takes as named fields; every other string field is a property */
const CORE = new Set([
  'id',
  'name',
  'disk_format',
  'container_format',
  'visibility',
  'min_disk',
  'min_ram',
  'protected',
  'tags',
  'os_hidden',
]);
const READ_ONLY = new Set([
  'status',
  'size',
  'virtual_size',
  'checksum',
  'created_at',
  'updated_at',
  'owner',
  'file',
  'self',
  'schema',
  'os_hash_algo',
  'os_hash_value',
  'direct_url',
  'locations',
]);

const imageNotFound = (id: string) =>
  new CloudError('NotFound', 'IMAGE_NOT_FOUND', `No image found with ID ${id}`);

export const imageService: OpenStackService = (scope: FastifyInstance, deps: OpenStackDeps) => {
  const { db } = deps;
  const images = deps.services.get('images') as ImageService;
  const stageDir = join(tmpdir(), 'nimbus-glance-uploads');
  useOpenStackErrors(scope, 'glance');
  requireToken(scope, deps.sessions, (path) => {
    const rest = path.slice(OPENSTACK_PREFIX.image.length).replace(/\/+$/, '');
    return rest === '' || rest === '/versions';
  });
  // the image data is left unread here and streamed from request.raw to its staging file (no body
  // limit, never held in memory; nor walked by the input guard as a parsed body would be)
  scope.addContentTypeParser('application/octet-stream', (_request, _payload, done) => done(null, undefined));
  // image PATCH bodies are JSON patches in Glance's own media types (v2.0 and v2.1 forms)
  scope.addContentTypeParser(
    /^application\/openstack-images-v2\.[01]-json-patch/,
    { parseAs: 'string' },
    (_request, body, done) => {
      try {
        done(null, JSON.parse(String(body)));
      } catch {
        done(new CloudError('Invalid', 'INVALID_JSON', 'the body is not a valid JSON patch'), undefined);
      }
    },
  );

  const versions = (request: FastifyRequest) => ({
    versions: ['2.9', '2.0'].map((v, i) => ({
      id: `v${v}`,
      status: i === 0 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href: `${baseUrl(request)}${OPENSTACK_PREFIX.image}/v2/` }],
    })),
  });
  scope.get('/', async (request, reply) => reply.code(300).send(versions(request)));
  scope.get('/versions', async (request) => versions(request));

  const record = (uuid: string) =>
    db.selectFrom('openstackImages').selectAll().where('uuid', '=', uuid).executeTakeFirst() as Promise<
      GlanceRecord | undefined
    >;
  const visibleRecord = (rec: GlanceRecord | undefined, caller: Caller) =>
    rec && (caller.isAdmin || rec.accountUuid === caller.accountUuid) ? rec : undefined;

  /** the image (Nimbus row and/or façade record) the caller sees; Deleted ones are gone */
  const load = async (caller: Caller, id: string) => {
    if (!isUuid(id)) throw imageNotFound(id);
    const [image, rec] = await Promise.all([getVisibleRow(db, images.schema, id, caller), record(id)]);
    if (image && image.state === 'Deleted') throw imageNotFound(id);
    const mine = visibleRecord(rec, caller);
    if (!image && !mine) throw imageNotFound(id);
    return { image, rec };
  };
  const owned = (caller: Caller, o: { image?: Obj; rec?: GlanceRecord }) => {
    const owner = (o.image?.accountUuid ?? o.rec?.accountUuid) as string;
    if (!caller.isAdmin && owner !== caller.accountUuid)
      throw forbidden('You are not permitted to modify this image.', 'IMAGE_NOT_OWNED');
  };

  scope.get('/v2/images', async (request) => {
    const caller = callerOf(request);
    const qs = request.query as Obj;
    const q = ['state!=Deleted'];
    if (typeof qs.name === 'string') q.push(`name=${qs.name}`);
    if (qs.visibility === 'public') q.push('isPublic=true');
    if (qs.visibility === 'private') q.push('isPublic=false');
    if (typeof qs.owner === 'string') q.push(`accountUuid=${qs.owner}`);
    const page = await listPage(deps, request, 'images', { q, limit: qs.limit, marker: qs.marker });
    const ids = page.items.map((i) => i.uuid as string);
    const recs = ids.length
      ? ((await db
          .selectFrom('openstackImages')
          .selectAll()
          .where('uuid', 'in', ids)
          .execute()) as GlanceRecord[])
      : [];
    const list = page.items.map((i) =>
      imageView(
        i,
        recs.find((r) => r.uuid === i.uuid),
      ),
    );
    // queued ones (no data yet) are the caller's own records without an image
    if (!qs.marker && qs.visibility !== 'public') {
      let qq = db
        .selectFrom('openstackImages as o')
        .selectAll('o')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('images as i').select('i.uuid').whereRef('i.uuid', '=', 'o.uuid'))),
        );
      if (!caller.isAdmin) qq = qq.where('o.accountUuid', '=', caller.accountUuid);
      if (typeof qs.name === 'string') qq = qq.where('o.name', '=', qs.name);
      list.unshift(...((await qq.execute()) as GlanceRecord[]).map((r) => imageView(undefined, r)));
    }
    const body: Obj = { images: list, first: '/v2/images', schema: '/v2/schemas/images' };
    if (page.more && page.items.length > 0)
      body.next = `/v2/images?marker=${page.items[page.items.length - 1]!.uuid}${qs.limit ? `&limit=${qs.limit}` : ''}`;
    return body;
  });

  scope.get('/v2/images/:id', async (request) => {
    const { image, rec } = await load(callerOf(request), (request.params as { id: string }).id);
    return imageView(image, rec);
  });

  scope.post('/v2/images', async (request, reply) => {
    const caller = callerOf(request);
    const b = (request.body ?? {}) as Obj;
    const id = typeof b.id === 'string' ? b.id : newId();
    if (!isUuid(id)) throw invalidField('id', 'a UUID', 'INVALID_ID');
    if (b.disk_format !== undefined && !FORMATS.includes(String(b.disk_format)))
      throw invalidField('disk_format', `one of ${FORMATS.join(', ')}`, 'IMAGE_FORMAT_UNSUPPORTED');
    const visibility = String(b.visibility ?? 'private');
    if (!['public', 'private', 'shared', 'community'].includes(visibility))
      throw invalidField('visibility', 'public, private, shared or community', 'INVALID_VISIBILITY');
    if ((visibility === 'public' || visibility === 'community') && !caller.isAdmin)
      throw forbidden('only the admin may publish an image', 'IMAGE_PUBLIC_ADMIN_ONLY');
    const properties: Obj = {};
    for (const [k, v] of Object.entries(b)) {
      if (CORE.has(k)) continue;
      if (READ_ONLY.has(k)) throw forbidden(`Attribute '${k}' is read-only.`, 'IMAGE_ATTRIBUTE_READ_ONLY');
      properties[k] = v;
    }
    const row = await db
      .insertInto('openstackImages')
      .values({
        uuid: id,
        accountUuid: caller.accountUuid,
        name: typeof b.name === 'string' ? b.name : '',
        diskFormat: (b.disk_format as string | undefined) ?? null,
        containerFormat: (b.container_format as string | undefined) ?? null,
        visibility: visibility as GlanceRecord['visibility'] as 'private',
        minDisk: Number(b.min_disk ?? 0),
        minRam: Number(b.min_ram ?? 0),
        protected: b.protected === true,
        properties: JSON.stringify(properties),
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row || (await db.selectFrom('images').select('uuid').where('uuid', '=', id).executeTakeFirst()))
      throw new CloudError('Conflict', 'IMAGE_EXISTS', `Image with identifier ${id} already exists!`);
    return reply
      .code(201)
      .header('location', `${baseUrl(request)}${OPENSTACK_PREFIX.image}/v2/images/${id}`)
      .send(imageView(undefined, row as GlanceRecord));
  });

  scope.put('/v2/images/:id/file', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { image, rec } = await load(caller, id);
    owned(caller, { image, rec });
    if (image || !rec)
      throw new CloudError(
        'Conflict',
        'IMAGE_NOT_QUEUED',
        `Image ${id} already has data; a new upload needs a new image`,
      );
    if (!rec.diskFormat || !FORMATS.includes(rec.diskFormat))
      throw invalidField(
        'disk_format',
        `set disk_format (${FORMATS.join(', ')}) before uploading`,
        'IMAGE_FORMAT_UNSUPPORTED',
      );
    await mkdir(stageDir, { recursive: true });
    const path = join(stageDir, `${id}.${rec.diskFormat}`);
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let size = 0;
    await pipeline(
      request.raw,
      async function* (source) {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          md5.update(chunk);
          sha512.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(path),
    );
    if (size === 0) {
      await rm(path, { force: true });
      throw invalidField('file', 'the image data is empty', 'IMAGE_DATA_EMPTY');
    }
    const hashes = {
      checksum: md5.digest('hex'),
      os_hash_algo: 'sha512',
      os_hash_value: sha512.digest('hex'),
    };
    await db
      .updateTable('openstackImages')
      .set({ properties: JSON.stringify({ ...propertiesOf(rec), ...hashes }), updatedAt: new Date() })
      .where('uuid', '=', id)
      .execute();
    try {
      const job = await images.createAs(caller, id, {
        name: rec.name || id,
        url: `file://${path}?size=${size}`,
        format: rec.diskFormat,
        minDisk: rec.minDisk * GiB,
        ...(rec.visibility === 'public' || rec.visibility === 'community' ? { isPublic: true } : {}),
      });
      // Glance answers once the data is stored: the chain (the backup storage reads the staged
      // file) is waited for; an upload that outlasts the wait goes on, and the image shows saving
      const done = await deps.engine.waitFor(job.uuid, UPLOAD_WAIT_MS);
      if (done) await rm(path, { force: true });
      else void deps.engine.waitFor(job.uuid, 60 * 60_000).finally(() => rm(path, { force: true }));
      if (done && done.state !== 'Succeeded')
        throw new CloudError(
          'Conflict',
          'IMAGE_UPLOAD_FAILED',
          `the image was not stored (job ${job.uuid}: ${done.state})`,
        );
    } catch (err) {
      await rm(path, { force: true });
      throw err;
    }
    return reply.code(204).send();
  });

  scope.get('/v2/images/:id/file', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { image } = await load(caller, id);
    if (image?.state !== 'Ready') return reply.code(204).send();
    const source = await imageSourceOf(db, { uuid: id, url: image.url as string });
    if (!/^https?:/.test(source.url)) return reply.code(204).send(); // a simulated storage holds no bytes
    const res = await fetch(source.url, {
      headers: source.authorization ? { authorization: source.authorization } : {},
    });
    if (!res.ok || !res.body)
      throw new CloudError(
        'Unavailable',
        'IMAGE_DATA_UNAVAILABLE',
        `the backup storage answered ${res.status}`,
        { retryable: true },
      );
    return reply.header('content-type', 'application/octet-stream').send(Readable.fromWeb(res.body as never));
  });

  scope.patch('/v2/images/:id', async (request) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { image, rec } = await load(caller, id);
    owned(caller, { image, rec });
    const ops = Array.isArray(request.body) ? (request.body as Obj[]) : [];
    const changes: Obj = {};
    const props: Obj = propertiesOf(rec);
    const recChanges: Obj = {};
    for (const [i, given] of ops.entries()) {
      // the v2.0 form names the operation as the key: {"replace": "/name", "value": …}
      const legacy = ['add', 'replace', 'remove'].find((k) => typeof given[k] === 'string');
      const op: Obj =
        given.op === undefined && legacy ? { op: legacy, path: given[legacy], value: given.value } : given;
      const key = String(op.path ?? '').replace(/^\//, '');
      if (!['add', 'replace', 'remove'].includes(String(op.op)))
        throw invalidField(`[${i}].op`, 'add, replace or remove', 'INVALID_PATCH');
      if (READ_ONLY.has(key))
        throw forbidden(`Attribute '${key}' is read-only.`, 'IMAGE_ATTRIBUTE_READ_ONLY');
      if (key === 'name') {
        changes.name = op.value;
        recChanges.name = op.value;
      } else if (key === 'visibility') {
        if (!caller.isAdmin && (op.value === 'public' || op.value === 'community'))
          throw forbidden('only the admin may publish an image', 'IMAGE_PUBLIC_ADMIN_ONLY');
        if (caller.isAdmin) changes.isPublic = op.value === 'public' || op.value === 'community';
        recChanges.visibility = op.value;
      } else if (key === 'min_disk') changes.minDisk = Number(op.value) * GiB;
      else if (key === 'min_ram') recChanges.minRam = Number(op.value);
      else if (key === 'protected') recChanges.protected = op.value === true;
      else if (key === 'disk_format' || key === 'container_format')
        recChanges[key === 'disk_format' ? 'diskFormat' : 'containerFormat'] = op.value;
      else if (op.op === 'remove') delete props[key];
      else props[key] = op.value;
    }
    if (image && Object.keys(changes).length > 0) {
      const job = await images.update(caller, id, changes);
      await deps.engine.waitFor(job.uuid, 30_000);
    }
    const owner = (image?.accountUuid ?? rec?.accountUuid) as string;
    await db
      .insertInto('openstackImages')
      .values({
        uuid: id,
        accountUuid: owner,
        name: String(changes.name ?? image?.name ?? rec?.name ?? ''),
        properties: JSON.stringify(props),
        ...recChanges,
      })
      .onConflict((oc) =>
        oc
          .column('uuid')
          .doUpdateSet({ ...recChanges, properties: JSON.stringify(props), updatedAt: new Date() }),
      )
      .execute();
    const again = await load(caller, id);
    return imageView(again.image, again.rec);
  });

  scope.delete('/v2/images/:id', async (request, reply) => {
    const caller = callerOf(request);
    const { id } = request.params as { id: string };
    const { image, rec } = await load(caller, id);
    owned(caller, { image, rec });
    if (rec?.protected) throw forbidden(`Image ${id} is protected and cannot be deleted.`, 'IMAGE_PROTECTED');
    if (image) {
      // Glance's delete is final and at once: the soft delete (one state change) is waited for,
      // then the image is expunged (its backup storage copy freed) in the background
      const job = await images.remove(caller, id);
      const done = await deps.engine.waitFor(job.uuid, 30_000);
      if (done?.state !== 'Succeeded')
        throw new CloudError(
          'Conflict',
          'IMAGE_DELETE_FAILED',
          `the image was not deleted (job ${job.uuid}: ${done?.state ?? 'running'})`,
        );
      void images.actions.expunge!(caller, id, {}).catch((err) =>
        request.log.warn({ err, image: id }, 'expunge after a Glance delete failed'),
      );
    }
    await db.deleteFrom('openstackImages').where('uuid', '=', id).execute();
    return reply.code(204).send();
  });

  scope.get('/v2/schemas/image', async () => ({
    name: 'image',
    properties: {},
    additionalProperties: { type: 'string' },
  }));
  scope.get('/v2/info/import', async () => ({
    'import-methods': { description: 'Import methods available.', type: 'array', value: [] },
  }));
};
