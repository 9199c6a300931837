#!/bin/sh
# Installs nimbus-agent on a fresh Debian host (12 "bookworm" or newer), as root:
#
#   scp dist/nimbus-agent.mjs scripts/install-agent.sh root@HOST:/root/
#   ssh root@HOST sh /root/install-agent.sh [--management-ip IP] [--port 7070] [--cluster NAME]
#
# It apt-get installs what the agent drives (QEMU, qemu-img, dnsmasq, iproute2, nftables, the
# config-drive tools), copies the bundled agent to /usr/local/lib/nimbus-agent/, writes a random
# secret to /etc/nimbus-agent/secret (0600; kept if it exists; NIMBUS_AGENT_SECRET=… reuses one,
# e.g. the same secret on every host of a cluster so agents can live-migrate between them),
# writes and starts a systemd unit (or prints how to run the agent without systemd), and prints
# the exact `nimbus host create` line that adds the host. docs/hosts.md explains each step.
set -eu

PORT=7070
MANAGEMENT_IP=""
CLUSTER="<kvm-cluster>"
BUNDLE=""
NO_APT=0
usage() {
  cat <<EOF
usage: install-agent.sh [--management-ip IP] [--port PORT] [--cluster NAME] [--bundle FILE] [--no-apt]
  --management-ip IP  the address the management node reaches this host at (default: the
                      source address of this host's default route)
  --port PORT         the port the agent listens on (default 7070)
  --cluster NAME      the kvm cluster (name or uuid) to put in the printed host create line
  --bundle FILE       the agent bundle (default: nimbus-agent.mjs beside this script, or dist/)
  --no-apt            do not install Debian packages (they are already there)
EOF
}
while [ $# -gt 0 ]; do
  case "$1" in
    --management-ip) MANAGEMENT_IP="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --cluster) CLUSTER="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --no-apt) NO_APT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "install-agent.sh: run it as root" >&2; exit 1; }
case "$PORT" in ''|*[!0-9]*) echo "install-agent.sh: --port must be a number" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "$BUNDLE" ]; then
  for f in "$HERE/nimbus-agent.mjs" "$HERE/../dist/nimbus-agent.mjs"; do
    [ -f "$f" ] && { BUNDLE="$f"; break; }
  done
fi
[ -n "$BUNDLE" ] && [ -f "$BUNDLE" ] || {
  echo "install-agent.sh: no nimbus-agent.mjs (build it with 'node scripts/build.mjs', pass --bundle)" >&2
  exit 1
}

if [ "$NO_APT" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends \
    qemu-system-x86 qemu-utils dnsmasq-base iproute2 nftables dosfstools mtools procps ca-certificates
  command -v node >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends nodejs || true
fi

NODE=$(command -v node || true)
[ -n "$NODE" ] || { echo "install-agent.sh: node is not installed (Node.js 20 or newer is needed)" >&2; exit 1; }
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
if [ "$NODE_MAJOR" -lt 20 ]; then
  echo "install-agent.sh: $NODE is Node.js $("$NODE" --version); the agent needs 20 or newer" >&2
  echo "  (install Node.js 20 from nodejs.org or NodeSource, or copy the management node's node binary to /usr/local/bin/node)" >&2
  exit 1
fi

install -d -m 0755 /usr/local/lib/nimbus-agent
install -m 0644 "$BUNDLE" /usr/local/lib/nimbus-agent/nimbus-agent.mjs
install -d -m 0700 /etc/nimbus-agent /var/lib/nimbus-agent
umask 077
if [ -n "${NIMBUS_AGENT_SECRET:-}" ]; then
  printf '%s\n' "$NIMBUS_AGENT_SECRET" > /etc/nimbus-agent/secret
elif [ ! -s /etc/nimbus-agent/secret ]; then
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > /etc/nimbus-agent/secret
  echo >> /etc/nimbus-agent/secret
fi
chmod 0600 /etc/nimbus-agent/secret
SECRET=$(cat /etc/nimbus-agent/secret)
[ ${#SECRET} -ge 16 ] || { echo "install-agent.sh: the secret must have at least 16 characters" >&2; exit 1; }

if [ -z "$MANAGEMENT_IP" ]; then
  MANAGEMENT_IP=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
fi
[ -n "$MANAGEMENT_IP" ] || MANAGEMENT_IP="<this-host-ip>"

# the VXLAN tunnel endpoint is the management address (docs/hosts.md)
AGENT_ARGS="--listen 0.0.0.0:$PORT --state-dir /var/lib/nimbus-agent --secret-file /etc/nimbus-agent/secret --vtep-ip $MANAGEMENT_IP"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  cat > /etc/systemd/system/nimbus-agent.service <<EOF
[Unit]
Description=Nimbus host agent (QEMU guests, bridges, DHCP, security groups)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$NODE /usr/local/lib/nimbus-agent/nimbus-agent.mjs $AGENT_ARGS
Restart=always
RestartSec=2
# guests are QEMU processes the agent starts: they must outlive an agent restart
KillMode=process

[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable nimbus-agent.service
  systemctl restart nimbus-agent.service
  echo "nimbus-agent: installed and started (systemctl status nimbus-agent)"
else
  echo "nimbus-agent: installed; no systemd here: run it (as root) with"
  echo "  nohup $NODE /usr/local/lib/nimbus-agent/nimbus-agent.mjs $AGENT_ARGS >>/var/log/nimbus-agent.log 2>&1 &"
fi

echo
echo "Add this host to Nimbus (from a machine with the nimbus CLI, logged in as admin):"
echo "  nimbus host create --name $(hostname) --cluster $CLUSTER --management-ip $MANAGEMENT_IP --agent-secret $SECRET$([ "$PORT" = 7070 ] || echo " --agent-port $PORT") --wait"
