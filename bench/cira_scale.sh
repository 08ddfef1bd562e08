#!/usr/bin/env bash
# Terminator + simulator at scale: connect storm, memory per connection (both
# sides), idle CPU, command round trips. Prints one report (docs/cira.md).
#
#   ./dmt bench cira_scale [devices]      (default 1000)
#
# `./dmt bench` builds the release tree and provides a private PostgreSQL and
# Mosquitto; this script makes its own database so runs do not see each other.
set -euo pipefail
: "${DMT_TEST_PG_DSN:?run this through ./dmt bench cira_scale}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMT_BUILD:-$ROOT/build}" work="$ROOT/var/bench/cira-work" n="${1:-1000}"
rm -rf "$work"
psql "$DMT_TEST_PG_DSN" -qc "DROP DATABASE IF EXISTS cira_bench" -c "CREATE DATABASE cira_bench" >/dev/null
export DMT_DB_DSN="${DMT_TEST_PG_DSN/dbname=postgres/dbname=cira_bench}" DMT_MQTT_URL="$DMT_TEST_MQTT_URL"
export DMT_SECRETS_KEY; DMT_SECRETS_KEY="$(openssl rand -hex 32)"
export DMT_SECRETS_KEY_ID=bench
mkdir -p "$work"
ulimit -n "$(ulimit -Hn)" || true
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
connected() { printf 'connected\n' | socat - UNIX-CONNECT:"$work/sim.sock" 2>/dev/null | awk '{print $2}'; }

port=$((20000 + RANDOM % 10000))
"$build/tools/dmt-fleet" --fleet.count="$n" --fleet.tenant=bench --fleet.file="$work/fleet.json" \
  --fleet.mps_port="$port" --fleet.guid_prefix=9e9e0000-0000-4000-8000- >/dev/null
DMT_INSTANCE_ID=cira-bench DMT_CIRA_PORT="$port" DMT_CIRA_RUNTIME_DIR="$work" DMT_CIRA_COMMON_NAME=127.0.0.1 \
  DMT_HEALTH_PORT=0 DMT_LOG_LEVEL=${DMT_BENCH_LOG_LEVEL:-warn} DMT_CIRA_MAX_CONNECTIONS=$((n + 100)) "$build/agents/cira/dmt-cira" >"$work/cira.log" 2>&1 &
cira=$!
trap 'kill $cira $sim 2>/dev/null; wait 2>/dev/null' EXIT
sim=""
for _ in $(seq 300); do [ -s "$work/dmt-cira-cira-bench/root.pem" ] && break; sleep 0.1; done
sleep 1
cira_base=$(rss_kib $cira)
rate=${DMT_BENCH_CONNECT_RATE:-100000}
t0=$(date +%s.%N)
"$build/agents/sim/dmt-sim" --sim.fleet="$work/fleet.json" --sim.mps_ca="$work/dmt-cira-cira-bench/root.pem" \
  --sim.control="$work/sim.sock" --sim.connect_rate="$rate" --sim.reconnect_min_ms=2000 \
  --log.level=error >"$work/sim.log" 2>&1 &
sim=$!
for _ in $(seq 3000); do
  c=$(connected || echo 0)
  [ "${c:-0}" -ge "$n" ] && break
  sleep 0.2
done
t1=$(date +%s.%N)
c=$(connected || echo 0)
storm=$(echo "$t1 - $t0" | bc)
sleep 5
cpu0=$(cpu_s $cira) idle=${DMT_BENCH_IDLE_S:-90}
sleep "$idle"
cpu1=$(cpu_s $cira)
# Steady state: measured after the idle period (both processes trim their heaps while idle).
cira_rss=$(rss_kib $cira) sim_rss=$(rss_kib $sim)
rtt=$("$build/bench/cmd_rtt" "$DMT_MQTT_URL" bench "$work/fleet.json" 2000 1 || true)
rtt10=$("$build/bench/cmd_rtt" "$DMT_MQTT_URL" bench "$work/fleet.json" 5000 20 || true)
rsa=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $6}')
cat <<REPORT
devices                         $n (connected $c)
connect storm                   ${storm}s  ($(echo "$c / $storm" | bc) handshakes/s; openssl speed rsa2048: ${rsa} signs/s on one core)
terminator RSS                  ${cira_rss} KiB (baseline ${cira_base} KiB) = $(( (cira_rss - cira_base) / (n > 0 ? n : 1) )) KiB per held connection
simulator RSS                   ${sim_rss} KiB = $(echo "scale=1; $sim_rss / $n" | bc) KiB per simulated device
terminator idle CPU             $(echo "$cpu1 - $cpu0" | bc)s over ${idle}s = $(echo "scale=3; ($cpu1 - $cpu0) * 3600 / $idle / $n * 1000" | bc) CPU-ms per device-hour
power_state RTT, 1 in flight    $rtt
power_state RTT, 20 in flight   $rtt10
REPORT
