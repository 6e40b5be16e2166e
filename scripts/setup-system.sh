#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: a PostgreSQL server,
# Debian's Chromium (for Playwright), Slurm's controller (for the export tests), slurmd (one daemon
# playing a tenant environment's node, so a job lands in the tenant's partition), hyperfine (for the
# start-up benchmark, bench/bench_startup.py), Prometheus with promtool and Alertmanager (for the
# operations loop's rule and end-to-end tests).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld slurm-client)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
[ -x /usr/sbin/slurmd ] || need+=(slurmd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
