#!/usr/bin/env bash
# Debian packages kybern's tests and runtime use (DESIGN.md section 5). As root on Debian it
# installs the missing ones; otherwise it only reports what is missing (the tests that need
# them then say so and are skipped with that reason).
set -euo pipefail

PACKAGES=(
  python3-venv        # the virtual environment make creates
  runc crun tini      # OCI runtimes and the container init
  containernetworking-plugins iptables iproute2 nftables
  busybox-static      # test images
  etcd-server etcd-client
  docker-registry     # a real OCI registry for image tests
  unzip               # unpacking the kubectl/helm npm package
  iperf3              # bench/bench_service_throughput.py (service data path)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: not root on Debian; missing system packages: ${missing[*]}" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# docker-registry and etcd-server start services on install; nothing of ours relies on them.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not hold the ports the tests use.
for svc in etcd docker-registry; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done
