#!/usr/bin/env bash
# Tempest (Debian `tempest` 33) against a fresh Nimbus test node: the smoke-tagged tests of
# identity, compute and image (docs/openstack.md "Tempest" has the last run's counts and why each
# test fails or is skipped). Needs the built tree (node scripts/build.mjs) and DATABASE_URL.
# Usage: test/tempest/run.sh [tempest run regex]
set -euo pipefail
cd "$(dirname "$0")/../.."
regex="${1:-^tempest\.api\.(identity|compute|image)\..*\[.*\bsmoke\b}"
ws="$(mktemp -d /tmp/nimbus-tempest.XXXXXX)"
log="$ws/node.log"
node test/tempest/node.mjs >"$log" 2>&1 &
node_pid=$!
trap 'kill "$node_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q '"url"' "$log" && break; sleep 1; done
info="$(grep '"url"' "$log")"
get() { node -e "console.log(JSON.parse(process.argv[1])[process.argv[2]])" "$info" "$1"; }
(cd "$ws" && tempest init ws >/dev/null)
mkdir -p "$ws/ws/etc"
cp test/tempest/accounts.yaml "$ws/ws/etc/accounts.yaml"
sed -e "s#@URL@#$(get url)#" -e "s#@IMAGE@#$(get image)#" -e "s#@SMALL@#$(get small)#" \
  -e "s#@MEDIUM@#$(get medium)#" -e "s#@WORKSPACE@#$ws/ws#" test/tempest/tempest.conf.in >"$ws/ws/etc/tempest.conf"
cd "$ws/ws"
tempest run --serial --regex "$regex" || true
