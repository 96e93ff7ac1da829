#!/usr/bin/env bash
# The demo: firegate's main job on loopback. Starts a mosquitto of its own (never the system
# service) on a free port, firegate-sim with three SD-1 smoke detectors and a scripted scenario
# (config/demo/scenario.txt), firegated with config/demo/firegate.toml, and firegate-center, the
# reference receiver, which prints each alert as a control room would read it; the same alarms go
# to firegate-gb26875-center, the reference GB/T 26875.3 monitoring centre, whose receipts are shown
# at the end. Stops everything it started and removes its files on exit or Ctrl-C.
# Usage: tools/demo.sh [--hold]    --hold: keep running after the scenario, until Ctrl-C
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hold=false
[[ "${1:-}" == --hold ]] && hold=true

cd "$root"
tools/deps.sh
echo "demo: building (first time: about a minute)..."
build_log=$(mktemp /tmp/firegate-demo-build.XXXXXX)
{ cmake --preset release && cmake --build --preset release; } >"$build_log" 2>&1 \
  || { cat "$build_log" >&2; echo "demo: build failed (log above)" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"
bin="$root/build/release"

work=$(mktemp -d /tmp/firegate-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  # Newest first, each gone before the next: the gateway says goodbye before its broker stops (a
  # broker stopping under it would send its last will, "connection lost").
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopped"; exit 0' INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port, what
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: $2 did not open port $1; see its log:" >&2; cat "$work"/*.log >&2; exit 1
}
wait_text() {  # file, text, seconds
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "demo: '$2' did not appear in $1 within $3 s" >&2; return 1; }
    sleep 0.2
  done
}
wait_count() {  # file, text, count, seconds
  local deadline=$((SECONDS + $4))
  until (($(grep -c "$2" "$1" 2>/dev/null || true) >= $3)); do
    ((SECONDS < deadline)) || { echo "demo: '$2' did not appear $3 times in $1 within $4 s" >&2; return 1; }
    sleep 0.2
  done
}

broker_port=$(free_port)
modbus_port=$(free_port)
centre_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$broker_port" >"$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
wait_port "$broker_port" mosquitto

sed -e "s#^port = 18830#port = $broker_port#" -e "s#^port = 15020#port = $modbus_port#" -e "s#^port = 19026#port = $centre_port#" \
    -e "s#/tmp/firegate-demo/firegate.db#$work/firegate.db#" -e "s#/tmp/firegate-demo/control.sock#$work/control.sock#" -e "s#^dir = \"../profiles\"#dir = \"$root/config/profiles\"#" \
    config/demo/firegate.toml >"$work/firegate.toml"

# Process substitution, not a pipe: $! must be the center's pid, not tee's.
"$bin/tools/firegate-center" --port "$broker_port" --auto-ack 4 > >(tee "$work/center.out") &
pids+=($!)
wait_text "$work/center.out" "watching" 10

# The town's GB/T 26875.3 monitoring centre: the reference one, printing what it receives.
"$bin/tools/firegate-gb26875-center" --listen "127.0.0.1:$centre_port" --address 88888 >"$work/gb-centre.out" 2>&1 &
pids+=($!)
wait_port "$centre_port" firegate-gb26875-center

"$bin/tools/firegate-sim" --port "$modbus_port" --devices SD-1:1 SD-1:2 SD-1:3 RL-2:4 --script config/demo/scenario.txt >"$work/sim.log" 2>&1 &
pids+=($!)
wait_port "$modbus_port" firegate-sim

"$bin/daemon/firegated" -c "$work/firegate.toml" >"$work/firegated.log" 2>&1 &
pids+=($!)

cat <<INFO
demo: broker 127.0.0.1:$broker_port, simulator 127.0.0.1:$modbus_port (3 SD-1 detectors, an RL-2 relay
      driving the sounder), gateway gw-demo-01
demo: scenario: smoke in the kitchen at 4 s sounds the sounder; smoke in the dining room at 8 s; the control
      room (firegate-center) acknowledges each 4 s after it; the kitchen clears at 12 s and the sounder
      stays on for the dining room's fire; that clears at 16 s and only then is the sounder switched off.
      The storeroom detector goes silent at 20 s (its own fault) and answers again at 26 s; at 32 s the
      line behind the Modbus gateway is cut (all four units silent: one bus alert, not four) and
      restored at 40 s; then a wireless Zigbee detector in room 201 (over MQTT) smells smoke.
      Alerts appear below as the control room receives them.
INFO

wait_text "$work/center.out" "FAULT CLEARED: BUS ONLINE" 60 || { echo "--- firegated log"; cat "$work/firegated.log"; exit 1; }
# The wireless detector in room 201 (Zigbee, over MQTT): it reports, then smells smoke; the control
# room acknowledges, the smoke clears.
echo "demo: now the wireless detector in room 201 (Zigbee bridge over MQTT) reports smoke"
mkfifo "$work/sensor.in"
"$bin/tools/firegate-sim" --mqtt "127.0.0.1:$broker_port" --mqtt-device ZB-SMOKE:room-201 --commands \
  <"$work/sensor.in" >"$work/sensor.log" 2>&1 &
pids+=($!)
exec 4>"$work/sensor.in"
wait_text "$work/sensor.log" "sim publishing" 10
echo "room-201 publish" >&4
sleep 1
echo "room-201 smoke 1" >&4
# Its alarm, then the control room's acknowledgement: two alerts naming it.
wait_count "$work/center.out" "smoke-room-201" 2 20 || { echo "--- firegated log"; cat "$work/firegated.log"; exit 1; }
echo "room-201 smoke 0" >&4
wait_count "$work/center.out" "smoke-room-201" 3 20 || { echo "--- firegated log"; cat "$work/firegated.log"; exit 1; }
exec 4>&-
echo
echo "demo: the gateway's own account (firegated log, events only):"
grep -E "event raised|uplink connected|device offline|device online|bus offline|bus online" "$work/firegated.log" | sed 's/^/  /'
echo
echo "demo: what a technician on site sees (firegatectl, the gateway's diagnostic CLI):"
echo "\$ firegatectl status"
"$bin/tools/firegatectl" --socket "$work/control.sock" status | sed 's/^/  /'
echo "\$ firegatectl device smoke-kitchen"
"$bin/tools/firegatectl" --socket "$work/control.sock" device smoke-kitchen | sed 's/^/  /'
echo "\$ firegatectl device smoke-room-201"
"$bin/tools/firegatectl" --socket "$work/control.sock" device smoke-room-201 | sed 's/^/  /'
echo
echo "demo: what the town's GB/T 26875.3 centre received (component status frames, decoded):"
grep -A6 "type 2 (component running status)" "$work/gb-centre.out" | awk '
  /component address =/ { address = $6 }
  /component status =/ { match($0, /\(0x[0-9A-F]+: [^)]*\)/); status = substr($0, RSTART + 9, RLENGTH - 10) }
  /description =/ { match($0, /"[^"]*"/); printf "  component %s  %-20s %s\n", address, status, substr($0, RSTART, RLENGTH) }'
echo "\$ firegatectl alarms --history -n 8"
"$bin/tools/firegatectl" --socket "$work/control.sock" alarms --history -n 8 | sed 's/^/  /'
if $hold; then
  echo "demo: holding; try: $bin/tools/firegatectl --socket $work/control.sock devices (or tail, scan -b sim-tcp, test-alarm)"
  echo "demo: Ctrl-C stops everything"
  while true; do sleep 1; done
fi
echo "demo: done; everything it started is stopped"
