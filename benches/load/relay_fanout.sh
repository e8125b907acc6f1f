#!/usr/bin/env bash
# End-to-end load harness: one `moqt pub` test pattern through `moqt relay` to N `moqt sub --stats`
# on loopback. Prints each subscriber's whole-run line (frames/s, groups lost, latency p50/p99).
#
#   bash benches/load/relay_fanout.sh [subscribers=10] [fps=500] [size=1024] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
SUBS=${1:-10}; FPS=${2:-500}; SIZE=${3:-1024}; SECS=${4:-10}
cargo build -q --release --bin moqt
BIN=target/release/moqt
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
MOQT_LOG=warn $BIN relay --listen 127.0.0.1:0 2> "$DIR/relay.err" &
until grep -q "listening on" "$DIR/relay.err"; do sleep 0.05; done
ADDR=$(grep "listening on" "$DIR/relay.err" | awk '{print $3}')
FP=$(grep "certificate sha256" "$DIR/relay.err" | awk '{print $3}')
URL="moqt://$ADDR"
FRAMES=$((FPS * SECS))
MOQT_LOG=warn $BIN pub "$URL" load --fps "$FPS" --size "$SIZE" --group "$FPS" --tls-fingerprint "$FP" 2> "$DIR/pub.err" &
until MOQT_LOG=warn $BIN announced "$URL" load --count 1 --tls-fingerprint "$FP" 2>/dev/null | grep -q "+ load"; do :; done
for i in $(seq "$SUBS"); do
  MOQT_LOG=warn $BIN sub "$URL" load --stats --count "$FRAMES" --tls-fingerprint "$FP" > "$DIR/sub$i.out" 2>/dev/null &
done
wait $(jobs -p | tail -n "$SUBS") 2>/dev/null || true
echo "relay fan-out: $SUBS subscribers, $FPS frames/s of $SIZE B, $SECS s"
for i in $(seq "$SUBS"); do grep '^total' "$DIR/sub$i.out" || echo "sub$i: no summary"; done
curl -s "http://$ADDR/metrics" | grep -E '^moqt_(frames|groups_dropped)' || true
