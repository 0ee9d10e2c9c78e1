#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Python: Chromium (the docs page in a real
# browser), Fashion-MNIST (training and evaluation tests), promtool (the alert rules) and
# qemu-user (runs the generators on an emulated AVX2-only CPU: tests/models/test_cross_cpu.py).
# Installed here when this is root with apt-get (as CI is); otherwise it stops at once with
# the one command to run. Nothing is downloaded at test time.
set -euo pipefail
need=()
[ -n "${GANSERVE_TEST_CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)     # checks alertmanager.yml
command -v qemu-x86_64 >/dev/null || need+=(qemu-user)     # an AVX2 CPU for the cross-CPU test
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make test: installing the Debian packages the tests need: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "make test needs these Debian packages first: ${need[*]}" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
