#!/usr/bin/env bash
# Simulator scale benchmark: N idle simulated AMT devices (TLS + APF, keepalives)
# against minimal CIRA servers (bench/apf-sink), reporting how fast they connect
# and how much resident memory each costs the simulator.
#
#   bench/sim_scale.sh [devices] [processes] [connect_rate] [rsa|ec]
#     devices       total simulated devices (default 10000)
#     processes     dmt-sim processes to split them over (default 1; one process holds
#                   at most its RLIMIT_NOFILE hard limit of connections)
#     connect_rate  initial connections per second per process (default 2000)
#     key           server key type: rsa (RSA-2048, as DMT's MPS; the server's private-key
#                   operations then bound the rate) or ec (P-256, cheap for the server, so
#                   the simulator is what is measured). Default ec.
#
# Needs a release build (./dmt build). Prints one summary block; the figures in
# docs/simulator.md come from this script. Results are ratios and counts, never
# asserted anywhere.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DMT_BUILD_DIR:-$ROOT/build}"
SIM="$BUILD/agents/sim/dmt-sim"
SINK="$BUILD/bench/apf-sink"
DEVICES="${1:-10000}"
PROCS="${2:-1}"
RATE="${3:-2000}"
KEY="${4:-ec}"
PER_SINK=15000          # connections per apf-sink process (each holds one fd per device)
KEEPALIVE=30            # seconds, as DMT's MPS asks
BASE_PORT="${DMT_BENCH_PORT:-24433}"

[ -x "$SIM" ] && [ -x "$SINK" ] || { echo "build first: ./dmt build (need $SIM and $SINK)" >&2; exit 2; }
command -v socat >/dev/null || { echo "socat is needed (./dmt deps installs it)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/dmt-sim-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# An MPS root and a server certificate for 127.0.0.1, shaped like DMT's (nsCertType server).
case "$KEY" in
  rsa) NEWKEY=(-newkey rsa:2048) ;;
  ec) NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  *) echo "key must be rsa or ec" >&2; exit 2 ;;
esac
openssl req -x509 "${NEWKEY[@]}" -nodes -keyout "$WORK/root.key" -out "$WORK/root.pem" -days 2 \
  -subj "/O=unknown/CN=MPSRoot-bench" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${NEWKEY[@]}" -nodes -keyout "$WORK/server.key" -out "$WORK/server.csr" -subj "/O=unknown/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nnsCertType=server\n' >"$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/root.pem" -CAkey "$WORK/root.key" -CAcreateserial \
  -out "$WORK/server.pem" -days 2 -extfile "$WORK/ext.cnf" 2>/dev/null

SINKS=$(( (DEVICES + PER_SINK - 1) / PER_SINK ))
PORTS=""
for ((i = 0; i < SINKS; i++)); do
  port=$((BASE_PORT + i))
  "$SINK" "$port" "$WORK/server.pem" "$WORK/server.key" "$KEEPALIVE" >"$WORK/sink$i.log" 2>&1 &
  PIDS+=("$!")
  PORTS="${PORTS:+$PORTS,}$port"
done
sleep 0.5

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
connected() { # control socket -> devices with an established tunnel
  local r; r="$(printf 'connected\n' | timeout 5 socat -t 4 - "UNIX-CONNECT:$1" 2>/dev/null || true)"; r="${r#ok }"; echo "${r:-0}"
}

# What an idle simulator costs before it has any device connected (one device, no MPS reachable).
"$SIM" --sim.count=1 --sim.mps_port=1 --sim.mps_password=x --log.level=error >"$WORK/base.log" 2>&1 &
BASEPID=$!
PIDS+=("$BASEPID")
sleep 1
BASE_RSS=$(rss_kib "$BASEPID")
kill "$BASEPID"

PER_PROC=$(( (DEVICES + PROCS - 1) / PROCS ))
SIMS=()
for ((p = 0; p < PROCS; p++)); do
  n=$PER_PROC
  [ $(( (p + 1) * PER_PROC )) -gt "$DEVICES" ] && n=$(( DEVICES - p * PER_PROC ))
  prefix=$(printf '7a7a%04x-0000-4000-8000-' "$p")
  "$SIM" --sim.count="$n" --sim.guid_prefix="$prefix" --sim.mps_host=127.0.0.1 --sim.mps_port="$PORTS" \
    --sim.mps_username=benchuser --sim.mps_password=Bench@Passw0rd --sim.mps_ca="$WORK/root.pem" \
    --sim.connect_rate="$RATE" --sim.control="$WORK/sim$p.sock" --log.level=error >"$WORK/sim$p.log" 2>&1 &
  SIMS+=("$!")
  PIDS+=("$!")
done

total_connected() { local t=0 p; for ((p = 0; p < PROCS; p++)); do t=$((t + $(connected "$WORK/sim$p.sock"))); done; echo "$t"; }
stat_of() { # socket name -> value of one counter
  printf 'stats\n' | timeout 5 socat -t 4 - "UNIX-CONNECT:$1" 2>/dev/null | awk -v k="$2" '$1 == k {print $2}'
}

DEADLINE=$(( $(date +%s) + 60 + DEVICES / 200 ))
while [ "$(date +%s)" -lt "$DEADLINE" ] && [ "$(total_connected)" -lt "$DEVICES" ]; do sleep 0.5; done
CONNECTED=$(total_connected)
# Each process records when half and all of its devices first had a tunnel (ms after its start).
HALF_MS=0; FULL_MS=0
for ((p = 0; p < PROCS; p++)); do
  h=$(stat_of "$WORK/sim$p.sock" fleet_half_ready_ms); f=$(stat_of "$WORK/sim$p.sock" fleet_ready_ms)
  [ "${h:-0}" -gt "$HALF_MS" ] && HALF_MS=$h
  [ "${f:-0}" -gt "$FULL_MS" ] && FULL_MS=$f
done

# Idle: let housekeeping return the handshakes' memory, then watch a keepalive interval.
sleep 7
T0=0; for s in "${SIMS[@]}"; do T0=$((T0 + $(cpu_ticks "$s"))); done
sleep "$KEEPALIVE"
T1=0; RSS=0; HWM=0
for s in "${SIMS[@]}"; do
  T1=$((T1 + $(cpu_ticks "$s"))); RSS=$((RSS + $(rss_kib "$s"))); HWM=$((HWM + $(hwm_kib "$s")))
done
STILL=$(total_connected)
HZ=$(getconf CLK_TCK)

awk -v n="$DEVICES" -v c="$CONNECTED" -v still="$STILL" -v procs="$PROCS" -v rate="$RATE" \
    -v half="$HALF_MS" -v full="$FULL_MS" -v rss="$RSS" -v hwm="$HWM" -v base="$BASE_RSS" \
    -v ticks=$((T1 - T0)) -v hz="$HZ" -v ka="$KEEPALIVE" -v nofile="$(ulimit -Hn)" -v key="$KEY" 'BEGIN {
  t = (full ? full : 1) / 1000
  printf "devices              %d in %d process(es), %d CIRA servers (%s keys), RLIMIT_NOFILE hard %s\n", n, procs, int((n + 14999) / 15000), key, nofile
  printf "connected            %d (still connected after %d s idle: %d)\n", c, ka, still
  printf "time to all          %.1f s (half after %.1f s), paced at %d/s per process\n", t, half / 1000, rate
  printf "connect rate         %.0f devices/s\n", c / t
  printf "RSS                  %.1f MiB total, peak %.1f MiB, empty process %.1f MiB\n", rss / 1024, hwm / 1024, base / 1024
  printf "RSS per device       %.1f KiB (total / devices), %.1f KiB (above the empty process)\n", rss / n, (rss - procs * base) / n
  printf "projected 50,000     %.0f MiB in one process\n", (base + 50000 * (rss - procs * base) / n) / 1024
  printf "idle CPU             %.2f%% of one core (keepalives every %d s)\n", 100 * ticks / hz / ka, ka
}'
