"""The openstacksdk side of bench:openstack (bench/openstack.ts runs it with Debian's /usr/bin/python3).

N servers created through the stock SDK with C threads: each thread has its own Connection
(authenticated and its compute endpoint discovered before the clock starts, as a long-lived client
would be), takes the next server number, times `conn.compute.create_server` (the request's latency)
and then `conn.compute.wait_for_server(..., status='ACTIVE')` (the SDK's own polling of
GET /servers/{id} every --interval seconds): time-to-ACTIVE counts from before the create call.
Prints `ready` once connected and waits for a line on stdin (the caller reads the node's counters
in between); then one JSON line: the per-server figures, the wall time and the CPU seconds.
"""
import argparse
import json
import resource
import sys
import threading
import time

import openstack
import urllib3.connectionpool

# TCP connections the SDK opens (its sessions keep them alive; a new one during the burst means the
# node or the pool closed one): counted by wrapping urllib3's connection factory
opened = [0]
_new_conn = urllib3.connectionpool.HTTPConnectionPool._new_conn


def counted_new_conn(self):
    opened[0] += 1
    return _new_conn(self)


urllib3.connectionpool.HTTPConnectionPool._new_conn = counted_new_conn

# the statuses each poll of wait_for_server saw (runs of one status folded): the SDK's own fetch,
# observed, so a server that leaves BUILD for something other than ACTIVE shows up
seen = threading.local()
_fetch = openstack.compute.v2.server.Server.fetch


def observed_fetch(self, *args, **kwargs):
    res = _fetch(self, *args, **kwargs)
    trail = getattr(seen, 'trail', None)
    if trail is not None and (not trail or trail[-1] != res.status):
        trail.append(res.status)
    return res


openstack.compute.v2.server.Server.fetch = observed_fetch

p = argparse.ArgumentParser()
for name in ('auth-url', 'user', 'password', 'project', 'image', 'flavor', 'network'):
    p.add_argument('--' + name, required=True)
p.add_argument('--count', type=int, required=True)
p.add_argument('--concurrency', type=int, required=True)
p.add_argument('--interval', type=float, required=True)
p.add_argument('--prefix', default='os-bench')
a = p.parse_args()


def connect():
    conn = openstack.connect(
        auth_url=a.auth_url, username=a.user, password=a.password, project_name=a.project,
        user_domain_name='Default', project_domain_name='Default', region_name='RegionOne',
    )
    conn.compute.get_flavor(a.flavor)  # token, catalog and version discovery, off the clock
    return conn


conns = [None] * a.concurrency
errors = []


def open_one(i):
    try:
        conns[i] = connect()
    except Exception as e:  # noqa: BLE001 - reported below, the run stops
        errors.append('connect: %r' % e)


openers = [threading.Thread(target=open_one, args=(i,)) for i in range(a.concurrency)]
for t in openers:
    t.start()
for t in openers:
    t.join()
if errors:
    sys.exit(errors[0])
# the caller takes its "before" readings of the node now, then says go
print('ready', flush=True)
sys.stdin.readline()

lock = threading.Lock()
next_server = [0]
results = [None] * a.count


def worker(conn):
    while True:
        with lock:
            i = next_server[0]
            next_server[0] += 1
        if i >= a.count:
            return
        t0 = time.perf_counter()
        seen.trail = []
        try:
            server = conn.compute.create_server(
                name='%s-%d' % (a.prefix, i), image_id=a.image, flavor_id=a.flavor,
                networks=[{'uuid': a.network}],
            )
            t1 = time.perf_counter()
            server = conn.compute.wait_for_server(
                server, status='ACTIVE', failures=['ERROR'], interval=a.interval, wait=1800,
            )
            results[i] = {'id': server.id, 'create_ms': (t1 - t0) * 1000,
                          'active_ms': (time.perf_counter() - t0) * 1000, 'status': server.status,
                          'polled': seen.trail}
        except Exception as e:  # noqa: BLE001 - counted as a failure; the run goes on
            results[i] = {'error': repr(e)[:300]}


cpu0 = resource.getrusage(resource.RUSAGE_SELF)
opened_before = opened[0]
start = time.perf_counter()
threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - start
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    'wall_s': wall,
    'client_cpu_s': (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    'sdk': openstack.version.__version__,
    'connections_opened': opened[0] - opened_before,
    'servers': results,
}))
