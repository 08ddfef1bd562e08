#!/usr/bin/env bash
# RPS agent benchmark: N simulated devices activating at once (CCM and ACM),
# activations per second and where the server's time goes (database, RSA
# signing, the rest) versus round trips to the RPC client.
#
#   bench/rps_bench.sh [devices] [rounds]       (default 100 devices x 3 rounds)
#
# Builds the release tree (build/), starts a throwaway PostgreSQL and
# Mosquitto on free loopback ports under a temporary directory, runs
# build/bench/rps_bench for ccm then acm, one device at a time (20 rounds)
# and then [devices] at once, and removes everything. The figures
# in docs/rps.md come from this script. Nothing is asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DMT_BUILD_DIR:-$ROOT/build}"
DEVICES="${1:-100}"
ROUNDS="${2:-3}"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target rps_bench dmt-rps >/dev/null

WORK="$(mktemp -d /tmp/dmt-rps-bench.XXXXXX)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { local p="$1"; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
MQ_PID=""
cleanup() {
  [ -n "$MQ_PID" ] && kill "$MQ_PID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PGPORT="$(free_port 26432)"
MQPORT="$(free_port 22883)"
[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U dmt --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
  -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=300" \
  start >/dev/null
printf 'listener %s 127.0.0.1\nallow_anonymous true\n%s\n' "$MQPORT" "$([ "$(id -u)" -eq 0 ] && echo 'user root')" \
  >"$WORK/mosquitto.conf"
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" >/dev/null 2>&1 &
MQ_PID=$!
sleep 0.5

export DMT_TEST_PG_DSN="host=127.0.0.1 port=$PGPORT user=dmt dbname=postgres"
export DMT_TEST_MQTT_URL="tcp://127.0.0.1:$MQPORT"
for mode in ccm acm; do
  "$BUILD/bench/rps_bench" "$mode" 1 20   # one device at a time: the unloaded cost of one activation
  echo
  "$BUILD/bench/rps_bench" "$mode" "$DEVICES" "$ROUNDS"
  echo
done
