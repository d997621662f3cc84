#!/usr/bin/env bash
# Server CPU per caller frame, exovoice vs the minimal Deno echo, measured
# with the independent Node.js generator (load.mjs). Server on CPU 0,
# generator on CPU 1; CPU counted from /proc over the steady window only.
#
#   bash bench/independent/compare.sh [calls] [duration-s] [ramp-s] [frame-bytes]
#
# Set CPU_PROF=DIR to write the servers' CPU profiles there. exovoice runs
# with the V8 flags of `deno task start` unless MAIN_V8_FLAGS says otherwise
# (MAIN_V8_FLAGS= for V8's defaults); the minimal echo with V8's defaults.
set -euo pipefail
cd "$(dirname "$0")"
calls=${1:-1000}
duration=${2:-40}
ramp=${3:-10}
frame_bytes=${4:-3200}
# 16 bytes of 8 kHz 16-bit PCM per ms.
frames_per_s=$((16000 / frame_bytes))
[ -d node_modules/ws ] || npm install --silent --no-audit --no-fund >/dev/null
root=$(cd ../.. && pwd)
start_v8=$(grep -o -- '--v8-flags=[^ "]*' "$root/deno.json" | head -n1 | cut -d= -f2-)
main_v8=${MAIN_V8_FLAGS-$start_v8}

measure() {
  local kind=$1 port=$2
  local script="$root/main.ts"
  [ "$kind" = minimal ] && script="$root/bench/minimal_echo.ts"
  local flags=()
  [ -n "${CPU_PROF:-}" ] && flags=(--cpu-prof --cpu-prof-dir="$CPU_PROF/$kind")
  [ "$kind" = main ] && [ -n "$main_v8" ] && flags+=(--v8-flags="$main_v8")
  PORT=$port HOST=127.0.0.1 KV_PATH=:memory: LOG_LEVEL=warning MAX_SESSIONS=5000 \
    taskset -c 0 deno run --frozen "${flags[@]}" --allow-net --allow-env --allow-read --allow-write "$script" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
  taskset -c 1 node load.mjs --url "ws://127.0.0.1:$port/voicebot/ws" --calls "$calls" \
    --duration-s "$duration" --ramp-s "$ramp" --frame-bytes "$frame_bytes" >"/tmp/independent_$kind.json" &
  local gen=$!
  # Measure the steady window: after the ramp and 3 s to settle, for
  # (duration - ramp - 8) s, before the first calls end.
  sleep $((ramp + 3))
  local window=$((duration - ramp - 8))
  local t0 t1
  t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sleep "$window"
  t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  local rss
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  wait "$gen"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local ticks
  ticks=$(getconf CLK_TCK)
  local frames=$((calls * frames_per_s * window))
  awk -v kind="$kind" -v d=$((t1 - t0)) -v hz="$ticks" -v f="$frames" -v w="$window" -v rss="$rss" \
    -v summary="$(cat /tmp/independent_$kind.json)" \
    'BEGIN { printf "%-8s cpu %5.1f%%  %6.1f us/frame  rss %6.1f MiB  %s\n", kind, 100 * d / hz / w, 1e6 * d / hz / f, rss / 1024, summary }'
}

measure main 3811
[ -n "${SKIP_MINIMAL:-}" ] || measure minimal 3812
