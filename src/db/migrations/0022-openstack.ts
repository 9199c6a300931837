/**
 * What the OpenStack façade (src/openstack, docs/openstack.md) records that Nimbus's own kinds do
 * not carry; every row hangs off a native resource or account and goes with it:
 * - `openstack_keypairs`: Nova keypairs (a user's SSH public keys, by name).
 * - `openstack_servers`: a VM's Nova extras: the user who created it, the key name it was created
 *   with and its metadata.
 * - `openstack_images`: Glance's view of an image: disk/container format as the client named
 *   them, visibility, min_ram, protected and the free-form properties. A row whose uuid has no
 *   `images` row yet is a Glance image still `queued` (created, data not uploaded); the upload
 *   makes the Nimbus image with the same uuid.
 * - `openstack_app_credentials`: Keystone application credentials: a user's named secret (only its
 *   scrypt hash is kept, as for passwords) that logs in as that user on its project.
 * Metadata and properties are JSON kept as text: their keys are the user's (`os_distro`,
 * `owner_specified.openstack.md5`) and must come back as written, not camel-cased as the query
 * layer does to the keys of JSON columns.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the evolving schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table openstack_keypairs (
      user_uuid uuid not null references users (uuid) on delete cascade,
      name text not null,
      account_uuid uuid not null references accounts (uuid) on delete cascade,
      type text not null default 'ssh' check (type in ('ssh', 'x509')),
      public_key text not null,
      fingerprint text not null,
      created_at timestamptz not null default now(),
      primary key (user_uuid, name)
    )`.execute(db);
  await sql`
    create table openstack_servers (
      vm_uuid uuid primary key references vms (uuid) on delete cascade deferrable initially deferred,
      user_uuid uuid,
      key_name text,
      access_ipv4 text,
      access_ipv6 text,
      metadata text not null default '{}'
    )`.execute(db);
  await sql`
    create table openstack_images (
      uuid uuid primary key,
      account_uuid uuid not null references accounts (uuid) on delete cascade,
      name text not null,
      disk_format text,
      container_format text,
      visibility text not null default 'private' check (visibility in ('public', 'private', 'shared', 'community')),
      min_disk integer not null default 0,
      min_ram integer not null default 0,
      protected boolean not null default false,
      properties text not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table openstack_app_credentials (
      uuid uuid primary key,
      user_uuid uuid not null references users (uuid) on delete cascade,
      account_uuid uuid not null references accounts (uuid) on delete cascade,
      name text not null,
      description text,
      secret_hash text not null,
      expires_at timestamptz,
      unrestricted boolean not null default false,
      created_at timestamptz not null default now(),
      unique (user_uuid, name)
    )`.execute(db);
  await sql`create index openstack_images_account on openstack_images (account_uuid)`.execute(db);
}
