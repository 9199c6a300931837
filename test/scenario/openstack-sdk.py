"""The openstacksdk path (Debian python3-openstacksdk) against a Nimbus node: a short server
lifecycle through the SDK's cloud layer. Run by openstack-sdk.test.ts with the node's auth URL
and the tenant's credentials; prints one JSON line of what it saw (the test checks it)."""
import json
import sys
import tempfile

import openstack

auth_url, user, password, project = sys.argv[1:5]
conn = openstack.connect(
    auth_url=auth_url, username=user, password=password, project_name=project,
    user_domain_name='Default', project_domain_name='Default', region_name='RegionOne',
)
seen = {}
seen['project'] = conn.current_project_id
with tempfile.NamedTemporaryFile(suffix='.raw') as f:
    f.write(b'\0' * 1048576)
    f.flush()
    image = conn.create_image('sdk-image', filename=f.name, disk_format='raw',
                              container_format='bare', wait=True, timeout=120)
seen['image'] = conn.image.get_image(image.id).status
flavor = sorted(conn.compute.flavors(), key=lambda f: f.ram)[0]
seen['flavor'] = {'ram': flavor.ram, 'vcpus': flavor.vcpus}
kp = conn.compute.create_keypair(name='sdk-key')
seen['private_key'] = bool(kp.private_key)
server = conn.compute.create_server(name='sdk-vm', image_id=image.id, flavor_id=flavor.id,
                                    key_name='sdk-key')
server = conn.compute.wait_for_server(server, status='ACTIVE', wait=120, interval=0.2)
seen['active'] = server.status
conn.compute.stop_server(server)
seen['stopped'] = conn.compute.wait_for_server(server, status='SHUTOFF', wait=120, interval=0.2).status
conn.compute.start_server(server)
seen['started'] = conn.compute.wait_for_server(server, status='ACTIVE', wait=120, interval=0.2).status
seen['server_id'] = server.id
conn.compute.delete_server(server)
conn.compute.wait_for_delete(server, wait=120, interval=0.2)
seen['servers_after'] = [s.id for s in conn.compute.servers()]
conn.compute.delete_keypair('sdk-key')
conn.image.delete_image(image.id)
seen['images_after'] = sorted(i.name for i in conn.image.images())
print(json.dumps(seen))
