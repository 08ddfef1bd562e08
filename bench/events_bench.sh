#!/usr/bin/env bash
# Event-stream benchmarks: events/s from a stand-in publisher and from the real
# CIRA terminator to a consumer, and the EIM cost model (MQTT snapshot + changes
# against polling GET /api/v1/devices every 10 s). Results: docs/events.md.
#
#   ./dmt bench events                        # defaults: 200k events, 2,000 devices, 5 rounds
#   ./dmt bench events --devices 10000 --events 500000 --rounds 3
#
# `./dmt bench` builds a release tree, starts a private PostgreSQL and Mosquitto
# (as `./dmt test` does) and exports their addresses; this script only runs the
# program. Put a built dmt-bridge at build/agents/bridge/ to measure the polling
# side on the real bridge instead of computing it from the device rows.
set -euo pipefail
: "${DMT_TEST_MQTT_URL:?run this through ./dmt bench events}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${DMT_BUILD:-build}/bench/events_bench" "$@"
