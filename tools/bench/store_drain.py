#!/usr/bin/python3
"""Backlog drain benchmark: a store holding READINGS undelivered readings (as after a long uplink
outage) is drained by firegated to a local mosquitto, while fire alarms are raised.

Fills the database with tools/bench/store_bench --fill (flush-sized batches of SD-1 polls, stored
and queued as firegated stores them), starts a mosquitto of its own, firegate-sim with DETECTORS SD-1
detectors and firegated (alarm group every ALARM_MS), and subscribes to the platform's telemetry and
alarm topics with receipt timestamps. Measures:

  * drain rate: backlog readings received / time from the first to the last backlog message;
  * alarm latency during the drain: from the simulator's log line of each fire to the alarm's
    receipt (includes waiting for the next alarm-group poll, at most ALARM_MS), and from
    firegated's "event raised ... stored=true" log line to the receipt (what the drain could delay);
  * firegated's CPU and peak RSS over the drain.

Usage: tools/bench/store_drain.py --readings 1000000 [--rate 50] [--alarm-ms 50] [--fires 10]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modbus_fleet import (ROOT, cpu_seconds, memory_kib, percentiles, process_starter, sim_times,  # noqa: E402
                          site_lines, start_broker, stop_all, wait_for)


def config(work, broker_port, sim_port, detectors, alarm_ms, rate):
    lines = site_lines(work, broker_port) + [
        f'telemetry_rate = {rate}',
        '[[buses]]', 'name = "tcp-1"', 'driver = "modbus_tcp"', 'host = "127.0.0.1"', f'port = {sim_port}',
        'poll_interval_ms = 1000', f'alarm_interval_ms = {alarm_ms}',
    ]
    for unit in range(1, detectors + 1):
        lines += ['[[devices]]', f'name = "live-{unit}"', 'bus = "tcp-1"', 'profile = "SD-1"',
                  f'unit_id = {unit}', f'location = "bench {unit}"']
    with open(f"{work}/firegate.toml", "w") as f:
        f.write("\n".join(lines) + "\n")
    return f"{work}/firegate.toml"


def log_time(line):
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def quantiles(values):
    return {k: v for k, v in percentiles(values, 1).items() if k in ("p50", "p99", "max")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=50, help="mqtt.telemetry_rate, messages a second")
    ap.add_argument("--alarm-ms", type=int, default=50)
    ap.add_argument("--detectors", type=int, default=10)
    ap.add_argument("--fires", type=int, default=10)
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="firegate-drain-")
    procs = []

    start = process_starter(work, procs)

    try:
        t = time.time()
        subprocess.run([f"{args.build}/tools/store_bench", "--fill", f"{work}/firegate.db", "--readings",
                        str(args.readings), "--topic", "firegate/site-bench/gw-bench/telemetry"],
                       check=True, stdout=subprocess.DEVNULL)
        fill_s = time.time() - t
        db_mib = os.path.getsize(f"{work}/firegate.db") / 2**20

        _, broker_port = start_broker(work, start)
        sim = start([f"{args.build}/tools/firegate-sim", "--port", "0", "--devices", f"SD-1:1-{args.detectors}",
                     "--port-file", f"{work}/ports", "--commands"], "sim.log", stdin=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(f"{work}/ports"), 30, "firegate-sim")
        sim_port = int(open(f"{work}/ports").read().split()[0])
        start(["/usr/bin/mosquitto_sub", "-p", str(broker_port), "-t", "firegate/+/+/telemetry", "-t",
               "firegate/+/+/alarm", "-q", "1", "-F", "%U %t %p"], "received.txt")
        time.sleep(0.3)
        daemon = start([f"{args.build}/daemon/firegated", "-c",
                        config(work, broker_port, sim_port, args.detectors, args.alarm_ms, args.rate)],
                       "firegated.log")
        wait_for(lambda: "uplink connected" in open(f"{work}/firegated.log").read(), 30, "firegated")
        cpu0, t0 = cpu_seconds(daemon.pid), time.time()
        # Fires spread over the first part of the drain.
        time.sleep(1)
        for unit in range(1, min(args.fires, args.detectors) + 1):
            sim.stdin.write(f"{unit} state 1\n")
            sim.stdin.flush()
            time.sleep(0.53)

        def received(topic_kind):
            """(receipt time, payload) of each message received on .../TOPIC_KIND."""
            for line in open(f"{work}/received.txt", errors="replace"):
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[1].endswith("/" + topic_kind):
                    yield float(parts[0]), parts[2]

        def backlog_messages():
            # The backlog's devices are smoke-NNNN (store_bench --fill); live ones are live-N.
            return [(t, p) for t, p in received("telemetry") if '"gw-bench:smoke-' in p]

        wait_for(lambda: sum(p.count('"quality"') for _, p in backlog_messages()) >= args.readings,
                 60 + args.readings / 2000, "the backlog to drain")
        cpu1, t1 = cpu_seconds(daemon.pid), time.time()
        mem = memory_kib(daemon.pid)

        messages = backlog_messages()
        first, last = messages[0][0], messages[-1][0]
        backlog = sum(p.count('"quality"') for _, p in messages)
        backlog_ids = {json.loads(p)["id"] for _, p in messages}
        alarms = {}
        for when, payload in received("alarm"):
            event = json.loads(payload)
            if event.get("type") == "fire_alarm":
                alarms.setdefault(event["device"]["name"], when)
        changes = sim_times(open(f"{work}/sim.log").read())
        raised = {}
        for line in open(f"{work}/firegated.log"):
            m = re.search(r"event raised .* type=fire_alarm device=(\S+) .*stored=true", line)
            if m:
                raised.setdefault(m.group(1), log_time(line))
        from_sim = [(alarms[f"live-{u}"] - t) * 1000 for (_, u), t in changes.items() if f"live-{u}" in alarms]
        from_raise = [(alarms[d] - t) * 1000 for d, t in raised.items() if d in alarms]
        result = {
            "readings": args.readings, "fill_s": round(fill_s, 1), "db_mib": round(db_mib, 1),
            "telemetry_rate": args.rate, "messages": len(backlog_ids),
            "drain_s": round(last - first, 2), "drain_readings_per_s": round(backlog / (last - first)),
            "firegated_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "firegated_peak_rss_mib": round(mem["VmHWM"] / 1024, 1),
            "fires": len(from_sim),
            "fire_to_platform_ms": quantiles(from_sim) if from_sim else None,
            "stored_to_platform_ms": quantiles(from_raise) if from_raise else None,
        }
        print(json.dumps(result))
    finally:
        stop_all(procs, work, args.keep)


if __name__ == "__main__":
    main()
