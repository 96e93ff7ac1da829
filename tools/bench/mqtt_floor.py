#!/usr/bin/python3
"""The floor under MQTT ingest: what an MQTT client library alone costs to take a QoS 1 message.

A mosquitto of its own on loopback; mosquitto_pub -l publishes COUNT sensor-like JSON messages
(QoS 1, about 100 bytes, one topic) as fast as it can; the subscriber takes them at QoS 1 and does
nothing with them. Its CPU time (user + system, from wait4) over COUNT is the cost a message of the
library and the kernel's socket work, the part of firegated's ingest cost that firegated's own code
cannot remove. Two subscribers: tools/bench/mqtt_floor.cpp (Paho C++, as firegated uses it) and
mosquitto_sub (libmosquitto).

Usage: tools/bench/mqtt_floor.py [--count 30000] [--runs 3] [--build build/release]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modbus_fleet import ROOT, process_starter, start_broker, stop_all  # noqa: E402


def cpu_of(argv, publish, work):
    """Runs ARGV (a subscriber, its output into WORK), then PUBLISH; returns the subscriber's CPU seconds."""
    with open(f"{work}/subscriber.out", "w") as out:
        sub = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        time.sleep(1)  # subscribed (a QoS 1 SUBACK on loopback takes well under this)
        publish()
        _, status, usage = os.wait4(sub.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        tail = open(f"{work}/subscriber.out").read()[-300:]
        raise SystemExit(f"bench: {argv[0]} did not receive every message: {tail.strip()}")
    return usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=30000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="firegate-floor-")
    procs = []
    start = process_starter(work, procs)
    try:
        _, port = start_broker(work, start)
        lines = "".join(json.dumps({"smoke": False, "battery": 87, "temperature": 21.5, "linkquality": 120,
                                    "tamper": False, "seq": i}) + "\n" for i in range(args.count))

        def publish():
            subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", "zb/zb-1", "-l"], input=lines,
                           text=True, check=True)

        results = {"count": args.count, "paho_us": [], "libmosquitto_us": []}
        for _ in range(args.runs):
            cpu = cpu_of([f"{args.build}/tools/mqtt_floor", str(port), "zb/#", str(args.count)], publish, work)
            results["paho_us"].append(round(cpu * 1e6 / args.count, 1))
            cpu = cpu_of(["mosquitto_sub", "-p", str(port), "-q", "1", "-t", "zb/#", "-C", str(args.count),
                             "-W", "60"], publish, work)
            results["libmosquitto_us"].append(round(cpu * 1e6 / args.count, 1))
        print(json.dumps(results))
    finally:
        stop_all(procs, work, False)


if __name__ == "__main__":
    main()
