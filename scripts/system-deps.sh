#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Python, installed when missing (idempotent; a no-op
# when everything is there): chromium drives the dashboard's browser tests (Playwright launches
# /usr/bin/chromium: browser downloads are not possible offline), prometheus brings `promtool`,
# which checks the shipped alerting rules (deploy/prometheus/), redis-server is the shared state the
# scale-out tests run against (issue 13; PostgreSQL comes from a PyPI wheel). Needs root (or sudo) only when
# something is missing.
set -euo pipefail
declare -A wanted=([chromium]=/usr/bin/chromium [prometheus]=/usr/bin/promtool [redis-server]=/usr/bin/redis-server)
missing=()
for pkg in "${!wanted[@]}"; do
  [[ -x "${wanted[$pkg]}" ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# only promtool is used, and redis-server is started by the tests on their own ports: refuse
# service starts during the install (policy-rc.d exit 101), so no package leaves a server running
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null && $sudo chmod +x "$guard"
fi
trap '[[ -z "$guard" ]] || $sudo rm -f "$guard"' EXIT
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  [[ -x "${wanted[$pkg]}" ]] || { echo "apt-get installed $pkg but ${wanted[$pkg]} is missing" >&2; exit 1; }
done
