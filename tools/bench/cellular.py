#!/usr/bin/env python3
"""Bytes on the uplink a day for a small site (issue 23, cellular data).

firegated polls 20 simulated SD-1 detectors once a second (their values wander as quiet detectors'
do) and publishes to a mosquitto over TLS on loopback, with the daemon's own defaults for keepalive
and heartbeat. tcpdump captures the gateway's listener of the broker (the platform's firegate-center
has a listener of its own: its traffic is not the site's); the bytes counted are IP packets (IP,
TCP, TLS and MQTT headers included, loopback's link header left out), both directions.

Three runs of WINDOW seconds each, after the start's burst has gone:
  shipped    the shipped profiles' report strategies (changes, hourly keep-alive)
  keepalive  the same with a keep-alive every 60 s: the cost of one keep-alive round, (this - shipped)
             per minute, which an hour's window would otherwise have to wait for
  every_poll every poll of every point (the behaviour before report strategies)
and in the shipped run, after its window, an alarm episode: a fire, its end and the control room's
acknowledgement, counted apart. A day is then
  shipped rate x 86400 + 24 keep-alive rounds + ALARMS episodes.

Needs tcpdump (apt install tcpdump) and root (to capture). Results: docs/performance.md.
  tools/bench/cellular.py [--build build/release] [--window 300] [--alarms 4] [--keepalive-s S]
                          [--heartbeat-s S] [--keep]
"""

import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modbus_fleet import (ROOT, free_port, process_starter, profiles_folder, site_lines, start_broker, stop_all,  # noqa: E402
                          wait_for, write_config)

DETECTORS = 20


def make_pki(work):
    """A CA and a server certificate for 127.0.0.1 (P-256, as the system tests' are)."""
    newkey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    with open(f"{work}/server.ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    script = (f"set -e; cd {work}; openssl req -x509 {newkey} -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca; "
              f"openssl req {newkey} -keyout server.key -out server.csr -subj /CN=localhost; "
              "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out server.pem "
              "-extfile server.ext")
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    # mosquitto started as root reads them as the mosquitto user.
    os.chmod(work, 0o755)
    for name in ("ca.pem", "server.pem", "server.key"):
        os.chmod(f"{work}/{name}", 0o644)


def pcap_bytes(path):
    """(packets, bytes of IP) in a pcap file of loopback (Ethernet-framed: 14 bytes a packet left out)."""
    packets = total = 0
    with open(path, "rb") as f:
        header = f.read(24)
        if len(header) < 24:
            return 0, 0
        endian = "<" if header[:4] == b"\xd4\xc3\xb2\xa1" else ">"
        link = struct.unpack(endian + "I", header[20:24])[0]
        strip = 14 if link == 1 else 0
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                break
            _, _, incl, orig = struct.unpack(endian + "IIII", rec)
            f.seek(incl, 1)
            packets += 1
            total += orig - strip
    return packets, total


class capture:
    """tcpdump of one port on loopback into WORK/NAME.pcap, from start to stop."""

    def __init__(self, work, name, port):
        self.path = f"{work}/{name}.pcap"
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "96", "-U", "-w", self.path, f"tcp port {port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # tcpdump says "listening on lo" once it captures.
        line = self.proc.stderr.readline().decode()
        if "listening" not in line:
            raise SystemExit(f"bench: tcpdump did not start: {line}")

    def stop(self):
        time.sleep(0.5)  # what is in flight
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        return pcap_bytes(self.path)


def run(args, name, report_lines, alarm=False):
    work = tempfile.mkdtemp(prefix=f"firegate-cellular-{name}-")
    procs = []
    start = process_starter(work, procs)
    try:
        make_pki(work)
        # The gateway's listener (TLS) is the cellular link; the platform's firegate-center reaches the
        # broker on a listener of its own, so that the capture holds the gateway's traffic alone.
        platform_port = free_port()
        _, port = start_broker(work, start,
                               f"cafile {work}/ca.pem\ncertfile {work}/server.pem\nkeyfile {work}/server.key\n"
                               f"listener {platform_port} 127.0.0.1\n")
        profiles = profiles_folder(work)
        sim = start([f"{args.build}/tools/firegate-sim", "--port", "0", "--profiles", profiles, "--devices",
                     f"SD-1:1-{DETECTORS}", "--port-file", f"{work}/ports", "--commands"], "sim.log",
                    stdin=subprocess.PIPE, text=True)
        wait_for(lambda: os.path.exists(f"{work}/ports"), 30, "firegate-sim")
        sim_port = int(open(f"{work}/ports").read().split()[0])
        lines = site_lines(work, port, profiles)
        lines += [f'{key} = {value}' for key, value in (("keepalive_s", args.keepalive_s),
                                                          ("heartbeat_s", args.heartbeat_s)) if value]
        lines += ['[uplink.mqtt.tls]', f'ca_file = "{work}/ca.pem"',
                  '[[buses]]', 'name = "rs485"', 'driver = "modbus_tcp"', 'host = "127.0.0.1"', f'port = {sim_port}',
                  'poll_interval_ms = 1000', 'alarm_interval_ms = 1000']
        for unit in range(1, DETECTORS + 1):
            lines += ['[[devices]]', f'name = "smoke-{unit}"', 'bus = "rs485"', 'profile = "SD-1"',
                      f'unit_id = {unit}', f'location = "room {unit}"'] + report_lines
        config = write_config(work, lines)
        # The platform: takes alarms, acknowledges them (as firegate-center --auto-ack does).
        center = start([f"{args.build}/tools/firegate-center", "--port", str(platform_port), "--auto-ack", "2"],
                       "center.log")
        daemon = start([f"{args.build}/daemon/firegated", "-c", config], "firegated.log")
        wait_for(lambda: "connected" in open(f"{work}/firegated.log").read(), 20, "the uplink")
        time.sleep(args.settle)  # the start's first values of every point, its status message
        cap = capture(work, name, port)
        t0 = time.monotonic()
        time.sleep(args.window)
        packets, total = cap.stop()
        seconds = time.monotonic() - t0
        out = {"run": name, "window_s": round(seconds, 1), "packets": packets, "bytes": total,
               "bytes_per_day": round(total / seconds * 86400)}
        if alarm:
            cap = capture(work, f"{name}-alarm", port)
            sim.stdin.write("1 smoke 2.5\n1 state 1\n")
            sim.stdin.flush()
            time.sleep(10)
            sim.stdin.write("1 state 0\n1 smoke 0.03\n")
            sim.stdin.flush()
            t1 = time.monotonic()
            time.sleep(20)
            a_packets, a_total = cap.stop()
            quiet = total / seconds * (time.monotonic() - t1 + 10)
            out["alarm_episode_bytes"] = round(a_total - quiet)
            out["alarm_episode_packets"] = a_packets
        assert daemon.poll() is None and center.poll() is None, "firegated or the center stopped"
        return out
    finally:
        stop_all(procs, work, args.keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    ap.add_argument("--window", type=float, default=300, help="seconds captured a run")
    ap.add_argument("--settle", type=float, default=15, help="seconds after connecting before capturing")
    ap.add_argument("--alarms", type=int, default=4, help="alarm episodes a day")
    ap.add_argument("--keepalive-s", type=int, help="[uplink.mqtt] keepalive_s (default: the daemon's)")
    ap.add_argument("--heartbeat-s", type=int, help="[uplink.mqtt] heartbeat_s (default: the daemon's)")
    ap.add_argument("--shipped-only", action="store_true",
                    help="only the shipped run (the keep-alive round and every poll do not depend on the heartbeat)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    shipped = run(args, "shipped", [], alarm=True)
    print(json.dumps(shipped), flush=True)
    if args.shipped_only:
        return
    keepalive = run(args, "keepalive", ['[devices.report."*"]', "at_least_every_s = 60"])
    print(json.dumps(keepalive), flush=True)
    every = run(args, "every_poll", ['[devices.report."*"]', 'on = "poll"'])
    print(json.dumps(every), flush=True)
    round_bytes = (keepalive["bytes"] / keepalive["window_s"] - shipped["bytes"] / shipped["window_s"]) * 60
    day = shipped["bytes"] / shipped["window_s"] * 86400 + 24 * round_bytes + args.alarms * shipped[
        "alarm_episode_bytes"]
    print(json.dumps({"site": f"{DETECTORS} SD-1 at 1 Hz", "keepalive_round_bytes": round(round_bytes),
                      "shipped_bytes_per_day": round(day), "every_poll_bytes_per_day": every["bytes_per_day"],
                      "alarms_a_day": args.alarms}))


if __name__ == "__main__":
    main()
