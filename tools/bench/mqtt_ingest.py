#!/usr/bin/python3
"""MQTT ingest benchmark: wireless sensors publishing to a site broker, firegated taking them in.

Starts a mosquitto of its own (the site broker and the platform broker at once), firegated with
one "mqtt" bus of N ZB-SMOKE detectors (zb-1 .. zb-N) and firegate-sim publishing as them, all on
loopback. Two measures:

  * latency: FIRES detectors report smoke one after another; from the simulator's log line of each
    publish (microseconds) to the fire alarm's arrival at a subscriber of the platform topics
    (mosquitto_sub receipt time). Once with the bus idle, once while LOAD messages a second of
    ordinary state reports flow from the other detectors;
  * sustained ingest: for each rate in RATES, firegate-sim publishes that many messages a second
    (QoS 1, round robin over the detectors) for SECONDS; firegated's own count of messages received
    (firegatectl status) over the window gives the rate taken, with its CPU, and whether anything
    was dropped or left waiting.

Prints one JSON object; --markdown prints tables.

Usage: tools/bench/mqtt_ingest.py --devices 1000 --fires 100 --load 2000 --rates 2000,5000,10000
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modbus_fleet import (ROOT, cpu_seconds, log_times, memory_kib, percentiles, process_starter,  # noqa: E402
                          site_lines, start_broker, stop_all, wait_for, write_config)


def gateway_config(work, broker_port, devices, max_rate):
    lines = site_lines(work, broker_port) + [
        'telemetry = true',  # site_lines gives [control] socket = WORK/control.sock
        '[[buses]]', 'name = "wireless"', 'driver = "mqtt"', 'host = "127.0.0.1"', f'port = {broker_port}',
        f'max_rate = {max_rate}', f'burst = {max_rate}', 'queue_limit = 200000',
    ]
    for i in range(1, devices + 1):
        lines += ['[[devices]]', f'name = "zb-{i}"', 'bus = "wireless"', 'profile = "ZB-SMOKE"', f'id = "zb-{i}"',
                  f'location = "room {i}"']
    return write_config(work, lines)


def publish_times(log):
    """Simulator publish lines of smoke=1: id -> epoch seconds."""
    return log_times(log, r"^(\S+)Z sim published id=(\S+) topic=\S+ kind=smoke=1 ", lambda m: m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--fires", type=int, default=100, help="fire alarms timed in each latency run")
    ap.add_argument("--load", type=float, default=2000, help="messages a second during the loaded latency run")
    ap.add_argument("--rates", default="2000,5000,10000", help="sustained ingest rates to try")
    ap.add_argument("--seconds", type=float, default=10, help="each sustained run")
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="firegate-bench-")
    procs = []
    build = args.build

    start = process_starter(work, procs)

    def status():
        out = subprocess.run([f"{build}/tools/firegatectl", "--socket", f"{work}/control.sock", "--json", "status"],
                             capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)["buses"][0]["diagnostics"]

    try:
        broker, port = start_broker(work, start)
        sub = start(["/usr/bin/mosquitto_sub", "-p", str(port), "-t", "firegate/+/+/alarm", "-q", "1", "-F", "%U %p"],
                    "alarms.txt")
        # No rate limiting in the way of the measurement: the benchmark's sensors are not floods.
        daemon = start([f"{build}/daemon/firegated", "-c", gateway_config(work, port, args.devices, 1000)],
                       "firegated.log")
        wait_for(lambda: "mqtt bus subscribed" in open(f"{work}/firegated.log").read(), 30, "firegated")
        ids = [f"ZB-SMOKE:zb-{i}" for i in range(1, args.devices + 1)]
        per_device = []
        for i in ids:
            per_device += ["--mqtt-device", i]
        sensors = start([f"{build}/tools/firegate-sim", "--mqtt", f"127.0.0.1:{port}", "--commands"] + per_device,
                        "sensors.log", stdin=subprocess.PIPE, text=True)
        wait_for(lambda: "sim publishing" in open(f"{work}/sensors.log").read(), 30, "firegate-sim")

        def fire_run(first, label):
            for k in range(first, first + args.fires):
                sensors.stdin.write(f"zb-{k} smoke 1\n")
                sensors.stdin.flush()
                time.sleep(0.05)
            time.sleep(2)
            sent = publish_times(open(f"{work}/sensors.log").read())
            got = []
            for line in open(f"{work}/alarms.txt"):
                received, payload = line.split(" ", 1)
                try:
                    event = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                name = event.get("device", {}).get("name", "")
                if event.get("type") == "fire_alarm" and name in sent and first <= int(name[3:]) < first + args.fires:
                    got.append((float(received) - sent[name]) * 1000)
            if len(got) != args.fires:
                print(f"bench: {label}: {len(got)} of {args.fires} alarms arrived", file=sys.stderr)
            return percentiles(got) if got else None

        result = {"devices": args.devices}
        result["latency_idle_ms"] = fire_run(1, "idle")
        # The same with ordinary state reports flowing from the detectors that are not fired.
        load_ids = [f"ZB-SMOKE:zb-{i}" for i in range(2 * args.fires + 1, args.devices + 1)]
        if args.load > 0 and load_ids:
            load_argv = []
            for i in load_ids:
                load_argv += ["--mqtt-device", i]
            load = start([f"{build}/tools/firegate-sim", "--mqtt", f"127.0.0.1:{port}", "--rate", str(args.load),
                          "--qos", "1"] + load_argv, "load.log")
            time.sleep(2)
            result["load_per_s"] = args.load
            result["latency_loaded_ms"] = fire_run(args.fires + 1, "loaded")
            load.terminate()
            load.wait(timeout=20)

        runs = []
        for rate in [float(r) for r in args.rates.split(",") if r]:
            time.sleep(2)
            before = status()
            cpu0, t0 = cpu_seconds(daemon.pid), time.time()
            burst = start([f"{build}/tools/firegate-sim", "--mqtt", f"127.0.0.1:{port}", "--rate", str(rate),
                           "--seconds", str(args.seconds), "--qos", "1"] + per_device, f"rate-{rate:.0f}.log")
            burst.wait(timeout=args.seconds + 120)
            published = int(re.search(r"stopped published=(\d+)", open(f"{work}/rate-{rate:.0f}.log").read()).group(1))
            # Let what is queued drain, then count.
            wait_for(lambda: int(status()["messages"]) - int(before["messages"]) >= published, 60,
                     f"firegated to receive {published} messages")
            t1, cpu1 = time.time(), cpu_seconds(daemon.pid)
            after = status()
            received = int(after["messages"]) - int(before["messages"])
            runs.append({"offered_per_s": rate, "published": published, "received": received,
                         "taken_per_s": round(received / (t1 - t0), 0),
                         "dropped_queue_full": int(after["dropped_queue_full"]) - int(before["dropped_queue_full"]),
                         "firegated_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1)})
        result["sustained"] = runs
        result["firegated_rss_mib"] = round(memory_kib(daemon.pid)["VmRSS"] / 1024, 1)
        daemon.terminate()
        daemon.wait(timeout=30)
        if args.markdown:
            for key in ("latency_idle_ms", "latency_loaded_ms"):
                if result.get(key):
                    print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in result[key].items()))
            print("| offered msg/s | published | received | taken msg/s | dropped | firegated CPU % |")
            print("|---|---|---|---|---|---|")
            for r in runs:
                print(f"| {r['offered_per_s']:.0f} | {r['published']} | {r['received']} | {r['taken_per_s']:.0f} | "
                      f"{r['dropped_queue_full']} | {r['firegated_cpu_percent']} |")
            print(f"firegated RSS {result['firegated_rss_mib']} MiB")
        else:
            print(json.dumps(result))
    finally:
        stop_all(procs, work, args.keep)


if __name__ == "__main__":
    main()
