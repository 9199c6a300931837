// Tempest (Debian `tempest` 33) against a fresh Nimbus node: `npm run test:tempest` (docs/openstack.md,
// "Tempest"). Starts a node with simulated hosts on a new database (DATABASE_URL, else an embedded
// PostgreSQL under .nimbus-test/), gives it what Tempest's smoke tests expect to find (a public
// image, two flavors, a shared external network with a router offering, pre-provisioned project
// accounts each with its own network), writes a Tempest workspace (tempest.conf + accounts.yaml:
// identity v3 only, the catalog's endpoints, what Nimbus does not offer disabled) and runs the
// smoke-tagged tests of identity, compute, image, network and volume. The run's output and a
// summary (every test with its status, every skip and failure with its reason) are written under
// .tempest/ (TEMPEST_DIR). Extra arguments go to `tempest run` (e.g. `--regex …` instead of the
// smoke selection). Exits with tempest's status.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const DIR = resolve(process.env.TEMPEST_DIR ?? '.tempest');
const ACCOUNTS = Number(process.env.TEMPEST_ACCOUNTS ?? 6);
// one at a time: Nimbus has one admin account, and Tempest's admin tests each hold it
const CONCURRENCY = process.env.TEMPEST_CONCURRENCY ?? '1';
// `tempest run --smoke` (its regex: the `smoke` attribute) narrowed to these five services
const SMOKE = '^tempest\\.api\\.(identity|compute|image|network|volume)\\..*\\[.*\\bsmoke\\b.*\\]';

if (!existsSync('/usr/bin/tempest')) {
  console.error('tempest is not installed (Debian package `tempest`)');
  process.exit(2);
}

let embedded;
if (!process.env.DATABASE_URL) {
  const { startEmbeddedDatabase } = await import('../dist/src/db/embedded.js');
  embedded = await startEmbeddedDatabase('.nimbus-test');
  process.env.DATABASE_URL = embedded.url;
}
const { startTestNode, ADMIN_PASSWORD } = await import('../dist/test/support/node.js');
const { buildRouterEnv, tenant, vrL3 } = await import('../dist/test/scenario/router-fixtures.js');

const t = await startTestNode();
let code = 1;
try {
  console.log(`nimbus node at ${t.url}; building the demo cloud…`);
  // one host: local storage, and a Cinder client cannot choose where a volume is made (a volume on
  // another host than the server is a 409 on attach)
  const env = await buildRouterEnv(t, { prefix: 'tempest', hosts: 1 });
  const accounts = [{ username: 'admin', project_name: 'admin', password: ADMIN_PASSWORD, types: ['admin'] }];
  for (let i = 1; i <= ACCOUNTS; i++) {
    const name = `tempest-${i}`;
    const { api } = await tenant(t, name);
    await vrL3(env, api, `${name}-net`);
    accounts.push({
      username: name,
      project_name: name,
      password: `${name}-password`,
      resources: { network: `${name}-net` },
    });
  }

  rmSync(DIR, { recursive: true, force: true });
  await sh('tempest', ['init', DIR]);
  mkdirSync(`${DIR}/etc`, { recursive: true });
  writeFileSync(`${DIR}/etc/accounts.yaml`, yaml(accounts));
  writeFileSync(`${DIR}/etc/tempest.conf`, conf(t.url, env));

  const args = process.argv.slice(2);
  const selection = args.length > 0 ? args : ['--regex', SMOKE];
  console.log(`tempest run ${selection.join(' ')} (workspace ${DIR})`);
  code = await sh('tempest', ['run', '--concurrency', CONCURRENCY, ...selection], DIR, `${DIR}/run.log`);
  summary();
} finally {
  await t.stop();
  if (embedded) await embedded.stop();
}
process.exit(code);

/** runs a command (output to the console, and to `log` when given); resolves with its status */
function sh(cmd, args, cwd = process.cwd(), log) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    for (const s of [child.stdout, child.stderr])
      s.on('data', (d) => {
        process.stdout.write(d);
        if (log) chunks.push(d);
      });
    child.on('exit', (c) => {
      if (log) writeFileSync(log, Buffer.concat(chunks));
      done(c ?? 1);
    });
  });
}

/**
 * run.log → summary.txt: each result line (`… ok`, `… SKIPPED: reason`, `… FAILED`) and their
 * counts; a class whose set-up failed or was skipped is one line for all its tests
 */
function summary() {
  const log = existsSync(`${DIR}/run.log`) ? readFileSync(`${DIR}/run.log`, 'utf8') : '';
  const lines = log.split('\n').filter((l) => /^\{\d+\} /.test(l) && / \.\.\. /.test(l));
  const counts = { ok: 0, skipped: 0, failed: 0 };
  for (const l of lines)
    if (/ \.\.\. ok$/.test(l)) counts.ok++;
    else if (/ \.\.\. SKIPPED/.test(l)) counts.skipped++;
    else counts.failed++;
  const text = lines.map((l) => l.replace(/^\{\d+\} /, '')).sort();
  writeFileSync(`${DIR}/summary.txt`, `${JSON.stringify(counts)}\n${text.join('\n')}\n`);
  console.log(
    `result lines: ${JSON.stringify(counts)} (${DIR}/summary.txt; failures' details in ${DIR}/run.log)`,
  );
}

function yaml(accounts) {
  return accounts
    .map((a) =>
      [
        `- username: '${a.username}'`,
        `  project_name: '${a.project_name}'`,
        `  password: '${a.password}'`,
        `  domain_name: 'Default'`,
        ...(a.types ? [`  types: [${a.types.map((x) => `'${x}'`).join(', ')}]`] : []),
        ...(a.resources ? [`  resources:`, `    network: '${a.resources.network}'`] : []),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');
}

/** tempest.conf: only what differs from Tempest's defaults, each with why */
function conf(url, env) {
  return `[DEFAULT]
log_file = ${DIR}/tempest.log

[auth]
# Nimbus's Keystone does not create projects or users: pre-provisioned accounts (accounts.yaml)
use_dynamic_credentials = false
test_accounts_file = ${DIR}/etc/accounts.yaml
create_isolated_networks = false
default_credentials_domain_name = Default
admin_domain_scope = false

[identity]
auth_version = v3
uri_v3 = ${url}/identity/v3
region = RegionOne
v3_endpoint_type = public
admin_role = admin
disable_ssl_certificate_validation = true

[identity-feature-enabled]
# identity v3 only; no trusts, project tags, application credentials' access rules, security
# compliance (password rules), or domain-specific drivers
api_v2 = false
api_v2_admin = false
api_v3 = true
trust = false
project_tags = false
access_rules = false
security_compliance = false
domain_specific_drivers = false

[service_available]
nova = true
glance = true
neutron = true
cinder = true
swift = false

[compute]
image_ref = ${env.image}
image_ref_alt = ${env.image}
flavor_ref = ${env.small}
flavor_ref_alt = ${env.medium}
region = RegionOne
build_timeout = 180
build_interval = 1
min_microversion = 2.1
max_microversion = 2.1

[compute-feature-enabled]
# what the Nova façade serves (docs/openstack.md); the rest is off
change_password = false
console_output = false
rescue = false
stable_rescue = false
shelve = false
shelve_migrate = false
suspend = false
resize = true
cold_migration = true
live_migration = false
block_migration_for_live_migration = false
vnc_console = false
spice_console = false
serial_console = false
rdp_console = false
metadata_service = false
config_drive = true
personality = false
attach_encrypted_volume = false
swap_volume = false
volume_multiattach = false
interface_attach = true
snapshot = true
pause = true
hostname_fqdn_sanitization = false
disk_config = false

[image]
region = RegionOne
build_timeout = 180
container_formats = bare
disk_formats = qcow2,raw,iso

[image-feature-enabled]
import_image = false
os_glance_reserved = false

[network]
region = RegionOne
public_network_id = ${env.publicL3}
floating_network_name = tempest-public
project_networks_reachable = false
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
shared_physical_network = false
build_timeout = 180

[network-feature-enabled]
ipv6 = false
ipv6_subnet_attributes = false
port_security = false
floating_ips = true
api_extensions = external-net,router,security-group,quotas,provider,binding,network-mtu,standard-attr-description,pagination,project-id

[volume]
region = RegionOne
catalog_type = volumev3
min_microversion = 3.0
max_microversion = 3.27
volume_size = 1
build_timeout = 180
storage_protocol = local

[volume-feature-enabled]
backup = false
snapshot = true
clone = false
manage_snapshot = false
manage_volume = false
extend_attached_volume = false
extend_attached_encrypted_volume = false

[validation]
# simulated hosts: no guest to ssh into
run_validation = false
`;
}
