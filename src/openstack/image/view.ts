/**
 * A Glance v2 image from a Nimbus image and the façade's record of it (openstack_images): the
 * record alone is a `queued` image (made, no data yet); Downloading is `saving`, Ready `active`,
 * Error `killed`. Deleted images are gone (404), as Glance shows them.
 */
type Obj = Record<string, unknown>;

const STATUS: Record<string, string> = {
  Downloading: 'saving',
  Ready: 'active',
  Error: 'killed',
  Deleted: 'deleted',
};
const GiB = 1024 ** 3;
const iso = (v: unknown) => (v ? new Date(v as string).toISOString().replace(/\.\d{3}Z$/, 'Z') : null);

export interface GlanceRecord {
  uuid: string;
  accountUuid: string;
  name: string;
  diskFormat: string | null;
  containerFormat: string | null;
  visibility: string;
  minDisk: number;
  minRam: number;
  protected: boolean;
  /** JSON text (schema-openstack.ts) */
  properties: string;
  createdAt: unknown;
  updatedAt: unknown;
}

export function imageView(image: Obj | undefined, rec: GlanceRecord | undefined): Obj {
  const id = (image?.uuid ?? rec?.uuid) as string;
  const props = propertiesOf(rec);
  const { checksum, os_hash_value, os_hash_algo, ...extra } = props;
  return {
    ...extra,
    id,
    name: image?.name ?? rec?.name,
    status: image ? (STATUS[image.state as string] ?? 'queued') : 'queued',
    visibility: image
      ? image.isPublic
        ? 'public'
        : rec?.visibility === 'shared'
          ? 'shared'
          : 'private'
      : (rec?.visibility ?? 'private'),
    protected: rec?.protected ?? false,
    os_hidden: false,
    size: image && image.state === 'Ready' ? Number(image.actualSize) : null,
    virtual_size: image && image.state === 'Ready' ? Number(image.size) : null,
    disk_format: rec?.diskFormat ?? (image?.format === 'iso' ? 'iso' : (image?.format ?? null)),
    container_format: rec?.containerFormat ?? (image ? 'bare' : null),
    checksum: checksum ?? null,
    os_hash_algo: os_hash_algo ?? null,
    os_hash_value: os_hash_value ?? null,
    min_disk: image ? Math.ceil(Number(image.minDisk) / GiB) : (rec?.minDisk ?? 0),
    min_ram: rec?.minRam ?? 0,
    owner: image?.accountUuid ?? rec?.accountUuid,
    created_at: iso(image?.createdAt ?? rec?.createdAt),
    updated_at: iso(image?.updatedAt ?? rec?.updatedAt),
    tags: [],
    file: `/v2/images/${id}/file`,
    self: `/v2/images/${id}`,
    schema: '/v2/schemas/image',
  };
}

/** a record's free-form properties (kept as JSON text) */
export function propertiesOf(rec: GlanceRecord | undefined): Obj {
  if (!rec) return {};
  const parsed: unknown = JSON.parse(rec.properties || '{}');
  return parsed !== null && typeof parsed === 'object' ? (parsed as Obj) : {};
}
