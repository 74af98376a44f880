#!/usr/bin/env bash
# One idempotent set-up for the testbed: used by the README, by .ci/run and by the Vagrantfile.
# Installs Debian/Ubuntu packages, makes a venv (.venv) that sees the distribution's mininet
# module, installs the project into it and starts Open vSwitch if it is not running.
# Run as root from anywhere; it works on the checkout it lives in.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: must run as root (Mininet and Open vSwitch need it); try: sudo $0" >&2
  exit 1
fi

# prometheus: the server the Prometheus integration test runs against a testbed (its own
# config, data folder and port; the package's service is not used)
pkgs=(mininet openvswitch-switch iperf3 ethtool iputils-ping cgroup-tools iproute2
      python3-venv python3-pip procps git prometheus)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv must be made from the distribution's python3: Debian's mininet module lives there.
py=/usr/bin/python3
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import mininet.net' 2>/dev/null; then
  rm -rf .venv
  "$py" -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

# Open vSwitch: there may be no systemd (containers, CI), so use ovs-ctl directly.
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  echo "install.sh: starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || \
    /usr/share/openvswitch/scripts/ovs-ctl start >/dev/null
fi
ovs-vsctl --timeout=10 show >/dev/null
echo "install.sh: ready ($(.venv/bin/python --version), $(ovs-vsctl --version | head -n1))"
