#!/usr/bin/env bash
# Side by side: the same `moqt bench` load against `moqt relay` and against moq-relay (from
# .ci/peers), in one run, each relay pinned to its own cores and the generator to others. Prints
# every figure for both relays and as a ratio (ours / theirs: below 1 is better for CPU, RSS and
# latency, above 1 is better for capacity).
#
#   bash benches/load/side_by_side.sh [w1|w2|all]      (default all)
#
# W1: SUBS subscribers (100), 30 fps of 8 KiB, 30 frames per group, SECS seconds (30).
# W2: subscribers added STEP at a time (50), each step measured STEP_SECS (6 s), until a step
#     loses a group, delivers under 97 % of its frames, or its p99 passes P99_MS (200 ms).
#     The capacity is the last step that passed.
#
# Environment: RELAY_CPUS (taskset list for the relay, default 0), GEN_CPUS (for the generator,
# default 1), WORKERS (moqt relay --workers, default 1), RELAYS ("ours theirs"), MOQT (binary;
# default: build target/release/moqt), PEERS (moq-relay's directory), SUBS, SECS, FPS, SIZE,
# GROUP, STEP, STEP_SECS, P99_MS, MAX_SUBS, VERSION (lite-06), OUT (keep the JSON lines here),
# BASE (another `moqt` binary, e.g. an older build: add "base" to RELAYS to run it too).
#
# Every generator connection comes from 127.0.0.1, so our relay runs without its per-address
# session limit (default 256).
#
# Relay CPU per delivered frame = the relay process's utime+stime from /proc over the measured
# window / frames the generator received in it (`moqt bench --watch-pid`). The generator's own
# CPU is printed too: when it is below 100 % of its cores, it was not the bottleneck.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHICH=${1:-all}
RELAY_CPUS=${RELAY_CPUS:-0}
GEN_CPUS=${GEN_CPUS:-1}
WORKERS=${WORKERS:-1}
RELAYS=${RELAYS:-ours theirs}
SUBS=${SUBS:-100}; SECS=${SECS:-30}; FPS=${FPS:-30}; SIZE=${SIZE:-8192}; GROUP=${GROUP:-30}
STEP=${STEP:-50}; STEP_SECS=${STEP_SECS:-6}; P99_MS=${P99_MS:-200}; MAX_SUBS=${MAX_SUBS:-2000}
VERSION=${VERSION:-lite-06}
PEERS=${PEERS:-$HOME/.cache/moqt-ci/peers/bin}
if [ -z "${MOQT:-}" ]; then
  cargo build -q --release --bin moqt
  MOQT=target/release/moqt
fi
DIR=$(mktemp -d)
OUT=${OUT:-$DIR}
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket
while True:
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("127.0.0.1",0)); p=u.getsockname()[1]
    t=socket.socket()
    try: t.bind(("127.0.0.1",p)); print(p); break
    except OSError: pass'
}

# start_relay ours|theirs: sets ADDR and RPID.
start_relay() {
  local log="$DIR/$1.log"
  if [ "$1" = ours ] || [ "$1" = base ]; then
    local bin=$MOQT; [ "$1" = base ] && bin=$BASE
    MOQT_LOG=warn MOQT_RELAY_WORKERS=$WORKERS taskset -c "$RELAY_CPUS" "$bin" relay --listen 127.0.0.1:0 \
      --drain-timeout 0 --max-sessions-per-address 1000000 --max-sessions 1000000 2> "$log" &
    RPID=$!
    until grep -q "listening on" "$log"; do sleep 0.05; kill -0 "$RPID"; done
    ADDR=$(grep "listening on" "$log" | awk '{print $3}')
  else
    local port; port=$(free_port)
    ADDR=127.0.0.1:$port
    RUST_LOG=warn taskset -c "$RELAY_CPUS" "$PEERS/moq-relay" --listen "$ADDR" --listen-tls-generate localhost \
      --web-http-listen "$ADDR" --auth-public "**" --connect-bind 127.0.0.1:0 --drain-timeout 0s > "$log" 2>&1 &
    RPID=$!
    until curl -sf "http://$ADDR/certificate.sha256" > /dev/null 2>&1; do sleep 0.05; kill -0 "$RPID"; done
  fi
  PIDS+=("$RPID")
}

stop_relay() { kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; }

# bench NAME ARGS...: runs the generator against $ADDR, watching $RPID; JSON lines to $OUT/NAME.jsonl.
bench() {
  local name=$1; shift
  taskset -c "$GEN_CPUS" "$MOQT" bench "moqt://$ADDR" --tls-disable-verify --version "$VERSION" --json \
    --watch-pid "$RPID" --fps "$FPS" --size "$SIZE" --group "$GROUP" "$@" > "$OUT/$name.jsonl" 2> "$OUT/$name.err" || {
    echo "bench $name failed:"; tail -5 "$OUT/$name.err"; return 1; }
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
field() { jq -r "$2" < "$1"; }

w1() {
  echo "W1: $SUBS subscribers, $FPS fps of $SIZE B, $GROUP frames/group, ${SECS}s; relay on cpu $RELAY_CPUS (workers $WORKERS), generator on cpu $GEN_CPUS"
  declare -A R
  for who in $RELAYS; do
    start_relay "$who"
    bench "w1-$who" --subscribers "$SUBS" --ramp 5 --duration "$SECS"
    stop_relay
    local t; t=$(grep '"total":true' "$OUT/w1-$who.jsonl")
    for k in relay_us_per_frame relay_rss_mb latency_ms_p50 latency_ms_p99 latency_ms_max frames_per_sec groups_lost cpu_percent relay_cpu_percent; do
      R[$who.$k]=$(echo "$t" | jq -r ".$k")
    done
  done
  printf "%-26s %14s %14s %8s" figure "moqt relay" "moq-relay" ratio
  case " $RELAYS " in *" base "*) printf " %14s %10s" "base moqt" "base ratio" ;; esac
  echo
  for k in relay_us_per_frame relay_rss_mb latency_ms_p50 latency_ms_p99 latency_ms_max frames_per_sec groups_lost relay_cpu_percent cpu_percent; do
    local a=${R[ours.$k]:-0} b=${R[theirs.$k]:-0} c=${R[base.$k]:-0}
    local label=$k; [ "$k" = cpu_percent ] && label="generator_cpu_percent"
    printf "%-26s %14.2f %14.2f %8s" "$label" "$a" "$b" "$(ratio "$a" "$b")"
    case " $RELAYS " in *" base "*) printf " %14.2f %10s" "$c" "$(ratio "$c" "$b")" ;; esac
    echo
  done
}

w2() {
  echo "W2: +$STEP subscribers every ${STEP_SECS}s until loss / <97 % delivered / p99 > ${P99_MS} ms (max $MAX_SUBS); relay on cpu $RELAY_CPUS (workers $WORKERS), generator on cpu $GEN_CPUS"
  declare -A C
  for who in $RELAYS; do
    start_relay "$who"
    bench "w2-$who" --subscribers 0 --step "$STEP" --step-secs "$STEP_SECS" --stop-p99-ms "$P99_MS" \
      --max-subscribers "$MAX_SUBS"
    stop_relay
    local t; t=$(grep '"total":true' "$OUT/w2-$who.jsonl")
    C[$who]=$(echo "$t" | jq -r '.capacity')
    C[$who.why]=$(echo "$t" | jq -r '.stopped')
    C[$who.rss]=$(echo "$t" | jq -r '.relay_rss_mb')
    C[$who.gen]=$(echo "$t" | jq -r '.cpu_percent')
    C[$who.last]=$(grep '"step"' "$OUT/w2-$who.jsonl" | tail -1 | jq -c '{subscribers,frames_per_sec,groups_lost,latency_ms_p99,relay_us_per_frame,relay_cpu_percent,cpu_percent}')
  done
  for who in $RELAYS; do
    echo "$who: capacity ${C[$who]:-?} subscribers (stopped: ${C[$who.why]:-?}; relay RSS ${C[$who.rss]:-?} MB; generator ${C[$who.gen]:-?} %); last step ${C[$who.last]:-}"
  done
  echo "capacity ratio (ours / theirs): $(ratio "${C[ours]:-0}" "${C[theirs]:-0}")"
}

case $WHICH in
  w1) w1 ;;
  w2) w2 ;;
  all) w1; w2 ;;
  *) echo "usage: $0 [w1|w2|all]"; exit 2 ;;
esac
