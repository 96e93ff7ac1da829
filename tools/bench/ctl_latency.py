#!/usr/bin/python3
"""firegatectl benchmark: how long a technician waits, and what a scan or a tail costs the daemon.

Starts firegate-sim with N SD-1 detectors on one Modbus TCP port and firegated polling them (one
bus, no broker: the uplink stays disconnected, which the control socket does not need), waits until
every device is online, then measures, each over RUNS runs of the real firegatectl binary (process
start included):

  * status, devices, device NAME, alarms --history: wall time per run;
  * export of everything read so far (CSV to a file): rows and rows/s;
  * scan of every unit through the daemon (identification reads between polls): seconds, and
    whether the bus fell behind its schedule meanwhile (firegated's "behind schedule" warnings);
  * tail for 5 s: lines received, lines dropped;
  * firegated's RSS at the end.

Prints one JSON object. Usage: tools/bench/ctl_latency.py --devices 247 --runs 50
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from modbus_fleet import free_port, wait_for  # the fleet benchmark's helpers, beside this file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=247, help="SD-1 units on one bus, 1-247")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup-s", type=float, default=20, help="polling before export, so there is history")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    a = ap.parse_args()
    ctl_bin = os.path.join(a.build, "tools", "firegatectl")
    work = tempfile.mkdtemp(prefix="firegate-ctl-bench.")
    sock = os.path.join(work, "control.sock")
    port = free_port()
    devices = "".join(
        f'[[devices]]\nname = "smoke-{u}"\nbus = "sim"\nprofile = "SD-1"\nunit_id = {u}\nlocation = "room {u}"\n'
        for u in range(1, a.devices + 1))
    with open(os.path.join(work, "fg.toml"), "w") as f:
        f.write(f"""[profiles]
dir = "{ROOT}/config/profiles"
[gateway]
id = "gw-bench"
[site]
id = "site-bench"
name = "Bench"
address = "1 Bench Road"
category = "workshop"
latitude = 30.25
longitude = 120.17
[site.responsible]
name = "A"
phone = "1"
[site.backup]
name = "B"
phone = "2"
[storage]
path = "{work}/fg.db"
[control]
socket = "{sock}"
[uplink.mqtt]
host = "127.0.0.1"
port = {free_port()}
[[buses]]
name = "sim"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {port}
timeout_ms = 500
max_in_flight = 8
{devices}""")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [os.path.join(a.build, "tools", "firegate-sim"), "--port", str(port), "--devices",
             f"SD-1:1-{a.devices}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        log = open(os.path.join(work, "firegated.log"), "w")
        daemon = subprocess.Popen([os.path.join(a.build, "daemon", "firegated"), "-c",
                                   os.path.join(work, "fg.toml")], stdout=log, stderr=log)
        procs.append(daemon)

        def ctl(*args, out=subprocess.DEVNULL):
            return subprocess.run([ctl_bin, "--socket", sock, *args], stdout=out, stderr=subprocess.PIPE,
                                  check=True)

        def online():
            if daemon.poll() is not None:
                raise SystemExit("bench: firegated exited")
            try:
                r = subprocess.run([ctl_bin, "--socket", sock, "--json", "status"], capture_output=True)
                return r.returncode == 0 and json.loads(r.stdout)["devices"]["online"] == a.devices
            except (ValueError, KeyError):
                return False

        try:
            wait_for(online, 60, "every device online")
        except SystemExit:
            print(open(os.path.join(work, "firegated.log")).read()[-2000:])
            raise
        result = {"devices": a.devices, "runs": a.runs}
        for name, args in (("status", ["status"]), ("devices", ["devices"]),
                           ("device", ["device", f"smoke-{a.devices // 2 or 1}"]),
                           ("history", ["alarms", "--history", "-n", "100"])):
            start = time.perf_counter()
            for _ in range(a.runs):
                ctl(*args)
            result[f"{name}_ms"] = round((time.perf_counter() - start) / a.runs * 1000, 1)
        time.sleep(a.warmup_s)
        csv = os.path.join(work, "export.csv")
        start = time.perf_counter()
        ctl("export", "--from", "1h", "-o", csv)
        took = time.perf_counter() - start
        rows = sum(1 for _ in open(csv)) - 1
        result["export_rows"] = rows
        result["export_rows_per_s"] = round(rows / took)
        behind_before = open(os.path.join(work, "firegated.log")).read().count("behind schedule")
        start = time.perf_counter()
        scan = subprocess.run([ctl_bin, "--socket", sock, "--json", "scan", "-b", "sim", "--from", "1", "--to",
                               str(a.devices)], capture_output=True, check=True)
        result["scan_s"] = round(time.perf_counter() - start, 2)
        result["scan_answered"] = sum(json.loads(l).get("answered", False) for l in scan.stdout.splitlines())
        result["behind_schedule_during_scan"] = (
            open(os.path.join(work, "firegated.log")).read().count("behind schedule") - behind_before)
        with open(os.path.join(work, "tail.out"), "w") as out:
            tail = subprocess.Popen([ctl_bin, "--socket", sock, "--json", "tail"], stdout=out)
            time.sleep(5)
            tail.terminate()
            tail.wait()
        lines = open(os.path.join(work, "tail.out")).read().splitlines()
        result["tail_lines_5s"] = len(lines)
        result["tail_dropped"] = sum(json.loads(l).get("dropped", 0) for l in lines)
        with open(f"/proc/{daemon.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    result["firegated_rss_kib"] = int(line.split()[1])
        print(json.dumps(result))
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
