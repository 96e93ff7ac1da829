#!/usr/bin/python3
"""RS-485 bus-time benchmark (issue 23): firegated on one paced Modbus RTU line.

A socat pty pair stands for the line. firegate-sim serves DEVICES SD-1 detectors (units 1..DEVICES)
on one end, its answers paced as a line at BAUD carries them (docs/simulator.md, "The serial line's
pace"); firegated polls them on the other end (a modbus_rtu bus) and publishes to a mosquitto of the
benchmark's own. For each schedule (ALARM_MS/POLL_MS) it measures, over a steady window:

  * requests a second achieved (the simulator's stats lines), against what the schedule asks and
    against the line's theoretical
    maximum for the same requests: each exchange costs its request's and its answer's bytes x 11
    bits / baud (the simulator counts the frames firegated really sent and got), two 3.5-character
    silences (the device's, before it answers; the master's, before its next request) and the
    device's turnaround. The ratio is that ideal line time over the window: 100 % is a line never
    idle and never slower than the wire;
  * fire -> platform: FIRES detectors (distinct units) fired 0.37 s apart, from the simulator's log
    line of each change to the fire alarm's receipt by mosquitto_sub (%U), p50/p90/p99/max;

and the alarm-group cycle of the line: DEVICES x one alarm-group exchange (the shortest time in which
every detector's state can be read once). Target: achieved >= 90 % of the maximum, and fire ->
platform p99 within one alarm-group cycle plus 50 ms. Prints one JSON object a schedule; --markdown
a table.

Usage: tools/bench/rs485.py --devices 32 --baud 9600 --schedules 500/1000,1000/60000 --fires 30
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modbus_fleet import (ROOT, cpu_seconds, latency_fields, process_starter, sim_times, site_lines,  # noqa: E402
                          start_broker, stop_all, wait_for, write_config)

BITS = 11  # a Modbus RTU character: start, 8 data bits, parity (or a second stop bit), stop


def char_s(baud):
    return BITS / baud


def silence_s(baud):
    """The 3.5-character silence that ends a frame; fixed at 1.75 ms above 19200 baud (§2.5.1.1)."""
    return 0.00175 if baud > 19200 else 3.5 * char_s(baud)


def exchange_s(request_bytes, answer_bytes, baud, turnaround_ms):
    """Line time of one exchange: both frames, two silences, the device's turnaround."""
    return (request_bytes + answer_bytes) * char_s(baud) + 2 * silence_s(baud) + turnaround_ms / 1000


# SD-1 (config/profiles/modbus/sd-1.toml), as firegated coalesces it (docs/profiles.md, "Schedules"):
# the alarm group is one fc 04 read of three registers, its state with the fire rule's evidence
# (8-byte request, 11-byte answer); a full poll one fc 04 read of all four (8, 13).
SD1_ALARM = (8, 11)
SD1_FULL = (8, 13)


def gateway_config(work, broker_port, tty, devices, baud, alarm_ms, poll_ms, timeout_ms):
    lines = site_lines(work, broker_port) + [
        '[[buses]]', 'name = "rs485-1"', 'driver = "modbus_rtu"', f'device = "{tty}"', f'baud = {baud}',
        'parity = "even"', f'timeout_ms = {timeout_ms}', f'poll_interval_ms = {poll_ms}',
        f'alarm_interval_ms = {alarm_ms}']
    for unit in range(1, devices + 1):
        lines += ['[[devices]]', f'name = "dev-0-{unit}"', 'bus = "rs485-1"', 'profile = "SD-1"',
                  f'unit_id = {unit}', f'location = "line 1, unit {unit}"']
    return write_config(work, lines)


def stats_between(log, t0, t1):
    """(requests, request bytes, answer bytes, seconds) of the simulator's stats lines logged in [T0, T1].

    Each line counts what was answered since the line before it, so the lines after the first
    cover exactly the time from the first line to the last: that is the window, whatever the
    lines' period and wherever [T0, T1] falls between them."""
    from datetime import datetime, timezone
    lines = []
    for m in re.finditer(r"^(\S+)Z sim stats requests=(\d+) per_s=\S+ request_bytes=(\d+) answer_bytes=(\d+)$",
                         log, re.M):
        t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
        if t0 <= t <= t1:
            lines.append((t, [int(m.group(i + 2)) for i in range(3)]))
    if len(lines) < 2:
        raise SystemExit("bench: fewer than two simulator stats lines in the window")
    out = [sum(counts[i] for _, counts in lines[1:]) for i in range(3)]
    return out + [lines[-1][0] - lines[0][0]]


def run(args, alarm_ms, poll_ms):
    work = tempfile.mkdtemp(prefix="firegate-bench-")
    procs = []
    start = process_starter(work, procs)
    try:
        _, broker_port = start_broker(work, start)
        a, b = f"{work}/tty-a", f"{work}/tty-b"
        start(["/usr/bin/socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"], "socat.log")
        wait_for(lambda: os.path.exists(a) and os.path.exists(b), 10, "socat's pty pair")
        sim = start([f"{args.build}/tools/firegate-sim", "--serial", b, "--baud", str(args.baud),
                     "--turnaround-ms", str(args.turnaround_ms), "--devices", f"SD-1:1-{args.devices}",
                     "--commands", "--stats-ms", "1000", "--tick-ms", "1000"], "sim.log",
                    stdin=subprocess.PIPE, text=True)
        wait_for(lambda: "sim listening" in open(f"{work}/sim.log").read(), 10, "firegate-sim")
        start(["/usr/bin/mosquitto_sub", "-p", str(broker_port), "-t", "firegate/+/+/alarm", "-q", "1",
               "-F", "%U %p"], "alarms.txt")
        config = gateway_config(work, broker_port, a, args.devices, args.baud, alarm_ms, poll_ms, args.timeout_ms)
        daemon = start([f"{args.build}/daemon/firegated", "-c", config], "firegated.log")

        def started():
            if daemon.poll() is not None:
                raise SystemExit("bench: firegated exited:\n" + open(f"{work}/firegated.log").read())
            return "firegated started" in open(f"{work}/firegated.log").read()
        wait_for(started, 30, "firegated")

        time.sleep(args.warmup)
        t0 = time.time()
        cpu0 = cpu_seconds(daemon.pid)
        time.sleep(args.seconds)
        t1 = time.time()
        cpu1 = cpu_seconds(daemon.pid)
        time.sleep(1.5)  # the window's last stats line
        requests, request_bytes, answer_bytes, window = stats_between(open(f"{work}/sim.log").read(), t0,
                                                                      t1 + 0.5)

        units = random.Random(7).sample(range(1, args.devices + 1), min(args.fires, args.devices))
        for unit in units:
            sim.stdin.write(f"{unit} state 1\n")
            sim.stdin.flush()
            time.sleep(0.37)  # not a multiple of the intervals: fires land anywhere in a cycle

        def alarms():
            out = {}
            for line in open(f"{work}/alarms.txt"):
                received, payload = line.split(" ", 1)
                try:
                    event = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                if event.get("type") == "fire_alarm":
                    out[int(event["device"]["name"].rsplit("-", 1)[1])] = float(received)
            return out
        deadline = time.time() + 30
        while time.time() < deadline and len(alarms()) < len(units):
            time.sleep(0.2)
        changes = sim_times(open(f"{work}/sim.log").read())
        latencies = [(t - changes[(0, u)]) * 1000 for u, t in alarms().items() if (0, u) in changes]
        behind = open(f"{work}/firegated.log").read().count("modbus bus behind schedule")

        ideal = (request_bytes + answer_bytes) * char_s(args.baud) + requests * (
            2 * silence_s(args.baud) + args.turnaround_ms / 1000)
        cycle_ms = args.devices * exchange_s(*SD1_ALARM, args.baud, args.turnaround_ms) * 1000
        # What the schedule asks of the line: per device, a full poll every POLL_MS and the alarm group
        # at the alarm polls between (ceil(poll / alarm) - 1 of them; a full poll is also an alarm poll).
        alarm_polls = -(-poll_ms // alarm_ms) - 1
        demand = args.devices * (exchange_s(*SD1_FULL, args.baud, args.turnaround_ms) +
                                 alarm_polls * exchange_s(*SD1_ALARM, args.baud, args.turnaround_ms)) / (poll_ms / 1000)
        result = {
            "devices": args.devices, "baud": args.baud, "turnaround_ms": args.turnaround_ms,
            "alarm_ms": alarm_ms, "poll_ms": poll_ms, "window_s": window,
            "schedule_load_percent": round(100 * demand, 1),
            "scheduled_requests_per_s": round(args.devices * (1 + alarm_polls) / (poll_ms / 1000), 1),
            "requests_per_s": round(requests / window, 1),
            "max_requests_per_s": round(requests / ideal, 1) if ideal else None,
            "of_max_percent": round(100 * ideal / window, 1),
            "bytes_per_request": round((request_bytes + answer_bytes) / requests, 1) if requests else None,
            "alarm_cycle_ms": round(cycle_ms, 1), "target_p99_ms": round(cycle_ms + 50, 1),
            "behind_schedule_warnings": behind,
            "firegated_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "fires": len(units), "alarms_received": len(latencies),
        }
        if latencies:
            result.update(latency_fields(latencies))
        return result
    finally:
        stop_all(procs, work, args.keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=32)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--turnaround-ms", type=int, default=5, help="the simulated devices' turnaround")
    ap.add_argument("--schedules", default="500/1000",
                    help="ALARM_MS/POLL_MS[,...]: one run each (500/1000: the shipped defaults)")
    ap.add_argument("--timeout-ms", type=int, default=500)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=20, help="requests measurement window")
    ap.add_argument("--fires", type=int, default=30, help="fire alarms to time end to end (distinct units)")
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    args = ap.parse_args()
    results = []
    for schedule in args.schedules.split(","):
        alarm_ms, poll_ms = (int(x) for x in schedule.split("/"))
        results.append(run(args, alarm_ms, poll_ms))
        if not args.markdown:
            print(json.dumps(results[-1]), flush=True)
    if args.markdown:
        keys = list(results[0])
        for r in results[1:]:
            keys += [k for k in r if k not in keys]
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in results:
            print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
