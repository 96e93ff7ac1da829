#!/usr/bin/python3
"""Modbus fleet benchmark: one firegated polling N simulated Modbus TCP devices.

Starts a mosquitto of its own, firegate-sim with N devices of PROFILE (SD-1 unless --profile;
PM-10 is the benchmark's ten-register meter in tools/bench/profiles) with PER_PORT units on each of
N / PER_PORT ports, so PER_PORT = 1 is N separate Modbus TCP devices, and firegated with one bus per
port, all on loopback. Measures over a steady window:

  * firegated's CPU (utime + stime from /proc) per second and per poll, and the simulator's;
  * firegated's RSS at the end and its peak (VmHWM);
  * polls and readings stored (through firegatectl export), requests answered by the simulator per
    device per second;
  * flash: the bytes firegated had written to the block device (write_bytes of /proc/PID/io) a
    second, against the readings' own bytes (8 a value) a second: the write amplification; and,
    after the daemon stops, the bytes on disk a reading (the readings' tables, and the whole file);

then fires FIRES detectors one after another through the simulator and measures the time from the
simulator's log line of each change to the fire alarm's arrival at a subscriber of the broker
(mosquitto_sub with receipt timestamps). Prints one JSON object; --markdown prints a table row.

Usage: tools/bench/modbus_fleet.py --devices 1000 --per-port 1 --alarm-ms 250 --poll-ms 1000
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count):
    """The first of COUNT consecutive loopback ports free now (for a server started again on the same ports),
    below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a connection tried to a port in
    that range with nothing listening can be given the same port as its own and connect to itself (TCP's
    simultaneous open), which holds the port the server is to listen on again (docs/rs485.md)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    starts = range(1024, low - count, 97)
    for first in random.Random().sample(starts, min(40, len(starts))):
        sockets = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise SystemExit(f"bench: no {count} consecutive free ports below {low}")


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


def cpu_and_kernel_seconds(pid):
    """The process's CPU time (utime + stime) and, of it, the kernel's on its behalf (stime), read at once."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid):
    return cpu_and_kernel_seconds(pid)[0]


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    # PSS: shared libraries counted in proportion to the processes that map them.
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Pss:", "Private_Dirty:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def stored_in(build, work, t0, t1):
    """(readings, polls) stored with a time in [T0, T1), from firegatectl export: a poll is a device's
    readings with one time."""
    def iso(t):
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")
    out = f"{work}/export.csv"
    subprocess.run([f"{build}/tools/firegatectl", "--socket", f"{work}/control.sock", "export", "--from", iso(t0),
                    "--to", iso(t1), "-o", out], check=True, capture_output=True, timeout=300)
    readings, polls = 0, set()
    with open(out) as f:
        next(f)  # time,device,point,value,unit,quality
        for line in f:
            time_text, device = line.split(",", 2)[:2]
            readings += 1
            polls.add((device, time_text))
    return readings, len(polls)


def site_lines(work, broker_port, profiles=f"{ROOT}/config/profiles"):
    """A benchmark gateway's file up to its [uplink.mqtt] port: profiles, site, storage in WORK."""
    return [
        '[profiles]', f'dir = "{profiles}"', 'shipped = ""',
        '[gateway]', 'id = "gw-bench"',
        '[site]', 'id = "site-bench"', 'name = "Benchmark site"', 'address = "loopback"',
        'category = "factory"', 'latitude = 30.27', 'longitude = 120.15',
        '[site.responsible]', 'name = "Bench"', 'phone = "+86 000"',
        '[site.backup]', 'name = "Bench backup"', 'phone = "+86 001"',
        '[storage]', f'path = "{work}/firegate.db"',
        '[control]', f'socket = "{work}/control.sock"',
        '[uplink.mqtt]', 'host = "127.0.0.1"', f'port = {broker_port}',
    ]


def start_broker(work, start, extra=""):
    """A mosquitto of the benchmark's own on a free port; START launches and records a process.
    EXTRA: more lines for its configuration (TLS files)."""
    port = free_port()
    with open(f"{work}/mosquitto.conf", "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 100000\n" + extra)
    broker = start(["/usr/sbin/mosquitto", "-c", f"{work}/mosquitto.conf"], "mosquitto.log")
    wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10, "mosquitto")
    return broker, port


def process_starter(work, procs):
    """START(argv, log, **kw): launches a process with its output in WORK/LOG, recorded in PROCS for stop_all."""
    def start(argv, log, **kw):
        p = subprocess.Popen(argv, stdout=open(f"{work}/{log}", "w"), stderr=subprocess.STDOUT, **kw)
        procs.append(p)
        return p
    return start


def percentiles(values, digits=2):
    """The count, p50, p90, p99 and max of VALUES, rounded to DIGITS."""
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "p50": round(statistics.median(values), digits), "p90": round(q[89], digits),
            "p99": round(q[98], digits), "max": round(values[-1], digits)}


def latency_fields(latencies):
    """latency_ms_p50, _p90, _p99 and _max of LATENCIES (ms), to 0.1 ms."""
    return {f"latency_ms_{k}": v for k, v in percentiles(latencies, 1).items() if k != "n"}


def stop_all(procs, work, keep):
    """Stops what the benchmark started, newest first, and removes WORK unless KEEP."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    if keep:
        print(f"bench: work folder kept at {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


def profiles_folder(work):
    """The shipped profiles and the benchmark's own (tools/bench/profiles), in one folder in WORK."""
    folder = f"{work}/profiles"
    shutil.copytree(f"{ROOT}/config/profiles", folder)
    for kind in os.listdir(f"{ROOT}/tools/bench/profiles"):
        for name in os.listdir(f"{ROOT}/tools/bench/profiles/{kind}"):
            shutil.copy(f"{ROOT}/tools/bench/profiles/{kind}/{name}", f"{folder}/{kind}/{name}")
    return folder


def io_written(pid):
    """Bytes the process has caused to be sent to the block device (write_bytes of /proc/PID/io)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def disk_use(db):
    """(bytes of the readings' tables, bytes of the whole file in use) of the database DB, read
    once the daemon has stopped (dbstat: pages of each table and index)."""
    import sqlite3
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        names = [n for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")]
        tables = [n for n in ("readings", "polls", "layouts") if n in names]
        table_bytes = c.execute(
            f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({','.join('?' * len(tables))})", tables).fetchone()[0]
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        used = (c.execute("PRAGMA page_count").fetchone()[0] - c.execute("PRAGMA freelist_count").fetchone()[0])
        return table_bytes or 0, used * page_size


def gateway_config(work, broker_port, ports, per_port, alarm_ms, poll_ms, profile="SD-1", profiles=None,
                   report_percent=None):
    """REPORT_PERCENT: every device's points sent on a change of more than that percent (at most every
    10 s, every value hourly) instead of the profile's report strategy."""
    lines = site_lines(work, broker_port, profiles or f"{ROOT}/config/profiles") + ['telemetry = true']
    for i, port in enumerate(ports):
        lines += ['[[buses]]', f'name = "tcp-{i}"', 'driver = "modbus_tcp"', 'host = "127.0.0.1"',
                  f'port = {port}', 'timeout_ms = 1000', f'poll_interval_ms = {poll_ms}',
                  f'alarm_interval_ms = {alarm_ms}']
        for unit in range(1, per_port + 1):
            lines += ['[[devices]]', f'name = "dev-{i}-{unit}"', f'bus = "tcp-{i}"', f'profile = "{profile}"',
                      f'unit_id = {unit}', f'location = "bench {i}/{unit}"']
            if report_percent is not None:
                lines += ['[devices.report."*"]', 'on = "change"', f'deadband_percent = {report_percent}',
                          'at_most_every_s = 10', 'at_least_every_s = 3600']
    return write_config(work, lines)


def write_config(work, lines):
    """Writes the gateway's file into WORK; returns its path."""
    with open(f"{work}/firegate.toml", "w") as f:
        f.write("\n".join(lines) + "\n")
    return f"{work}/firegate.toml"


def log_times(log, pattern, key):
    """Simulator log lines matching PATTERN (group 1 its UTC timestamp): KEY(match) -> epoch seconds."""
    out = {}
    pattern = re.compile(pattern)
    for line in log.splitlines():
        m = pattern.match(line)
        if m:
            t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
            out[key(m)] = t.timestamp()
    return out


def sim_times(log):
    """Simulator change lines: (port, unit) -> epoch seconds of 'state=1'."""
    return log_times(log, r"^(\S+)Z sim change (?:port=(\d+) )?unit=(\d+) state=1$",
                     lambda m: (int(m.group(2) or 0), int(m.group(3))))


# What one poll of a whole device asks, for --floor: (function, registers from address 0).
FLOOR_REQUESTS = {"SD-1": (4, 4), "PM-10": (3, 10)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--report-percent", type=float,
                    help="send each point on a change beyond this percent (at most every 10 s, hourly keep-alive) "
                         "instead of the profile's report strategy (PM-10 has none: every poll)")
    ap.add_argument("--floor", action="store_true",
                    help="poll the devices with tools/bench/modbus_floor instead of firegated: the floor a poll")
    ap.add_argument("--floor-tick-ms", type=int, default=0,
                    help="--floor: wake every N ms for every answer and request (0: a wake-up for each)")
    ap.add_argument("--per-port", type=int, default=1, help="units per simulated port (1: one device a port)")
    ap.add_argument("--profile", default="SD-1", help="the devices' profile (PM-10: ten holding registers)")
    ap.add_argument("--alarm-ms", type=int, default=1000)
    ap.add_argument("--poll-ms", type=int, default=1000)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=20, help="CPU measurement window")
    ap.add_argument("--fires", type=int, default=0, help="fire alarms to time end to end")
    ap.add_argument("--build", default=f"{ROOT}/build/release")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--scrapes", type=int, default=0,
                    help="after the window, time this many `firegatectl metrics` one after another: the text's "
                         "size, each scrape's time, and firegated's CPU a scrape (docs/metrics.md)")
    ap.add_argument("--outage", type=float, default=0,
                    help="at the end, stop the simulator (every device's server gone at once, as when a site's "
                         "switch dies), wait 20 s for the buses to tell their faults and their tries to settle at "
                         "one every 2 s, then measure firegated's CPU, log lines and RSS for this many seconds")
    ap.add_argument("--outage-cycles", type=int, default=1,
                    help="with --outage: this many outages, the simulator started again on the same ports after "
                         "each but the last and every bus back online before the next; RSS after each recovery "
                         "(does memory grow with each outage, or stay?)")
    ap.add_argument("--outage-mode", choices=["kill", "stop"], default="kill",
                    help="kill: the simulator's process ends, every connection refused (a switch that is up, "
                         "the devices gone); stop: it is stopped (SIGSTOP) and continued after, so connections "
                         "are taken by the kernel but nothing answers and every try waits out its timeout (devices "
                         "hung, or a path that drops the packets), and the requests sent meanwhile are answered "
                         "late, all at once, when it goes on")
    args = ap.parse_args()
    if args.devices % args.per_port:
        raise SystemExit("bench: --devices must be a multiple of --per-port")
    nports = args.devices // args.per_port
    work = tempfile.mkdtemp(prefix="firegate-bench-")
    procs = []

    start = process_starter(work, procs)

    try:
        broker, broker_port = start_broker(work, start)
        profiles = profiles_folder(work)

        # With several outages the simulator comes back on the same ports: a consecutive free range.
        first_port = free_port_range(nports) if args.outage_cycles > 1 else 0
        def start_sim(log):
            return start([f"{args.build}/tools/firegate-sim", "--port", str(first_port), "--ports", str(nports),
                          "--profiles", profiles, "--devices", f"{args.profile}:1-{args.per_port}",
                          "--port-file", f"{work}/ports", "--commands", "--stats-ms", "1000", "--tick-ms", "1000"],
                         log, stdin=subprocess.PIPE, text=True)
        sim = start_sim("sim.log")
        wait_for(lambda: os.path.exists(f"{work}/ports"), 30, "firegate-sim")
        ports = [int(p) for p in open(f"{work}/ports").read().split()]
        if args.floor:
            # The same devices asked by tools/bench/modbus_floor (no firegated): the floor a poll.
            fc, count = FLOOR_REQUESTS[args.profile]
            floor = subprocess.run([f"{args.build}/tools/modbus_floor", f"{work}/ports", str(fc), str(count),
                                    str(args.poll_ms), str(round(args.warmup)), str(round(args.seconds)),
                                    str(args.floor_tick_ms)],
                                   capture_output=True, text=True, check=True)
            result = json.loads(floor.stdout)
            print(json.dumps(dict(profile=args.profile, tick_ms=args.floor_tick_ms, **result)))
            return

        sub = start(["/usr/bin/mosquitto_sub", "-p", str(broker_port), "-t", "firegate/+/+/alarm", "-q", "1",
                     "-F", "%U %p"], "alarms.txt")
        config = gateway_config(work, broker_port, ports, args.per_port, args.alarm_ms, args.poll_ms, args.profile,
                                profiles, args.report_percent)
        daemon = start([f"{args.build}/daemon/firegated", "-c", config], "firegated.log")
        def started():
            if daemon.poll() is not None:
                raise SystemExit("bench: firegated exited:\n" + open(f"{work}/firegated.log").read())
            return "firegated started" in open(f"{work}/firegated.log").read()
        wait_for(started, 30, "firegated")

        time.sleep(args.warmup)
        t0 = time.time()
        (cpu0, kernel0), sim0 = cpu_and_kernel_seconds(daemon.pid), cpu_seconds(sim.pid)
        broker0, written0 = cpu_seconds(broker.pid), io_written(daemon.pid)
        time.sleep(args.seconds)
        t1 = time.time()
        (cpu1, kernel1), sim1 = cpu_and_kernel_seconds(daemon.pid), cpu_seconds(sim.pid)
        broker1, written1 = cpu_seconds(broker.pid), io_written(daemon.pid)
        mem = memory_kib(daemon.pid)

        latencies = []
        if args.fires:
            chosen = random.Random(7).sample([(p, u) for p in range(nports) for u in range(1, args.per_port + 1)],
                                             min(args.fires, args.devices))
            for port, unit in chosen:
                sim.stdin.write(f"{port}:{unit} state 1\n")
                sim.stdin.flush()
                time.sleep(0.37)  # not a multiple of the poll intervals: fires land anywhere in a cycle
            time.sleep(2)
            changes = sim_times(open(f"{work}/sim.log").read())
            for line in open(f"{work}/alarms.txt"):
                received, payload = line.split(" ", 1)
                try:
                    event = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                if event.get("type") != "fire_alarm":
                    continue
                m = re.match(r"dev-(\d+)-(\d+)$", event["device"]["name"])
                key = (int(m.group(1)), int(m.group(2)))
                if key in changes:
                    latencies.append((float(received) - changes[key]) * 1000)

        scrape = {}
        if args.scrapes:
            times, sizes = [], []
            cpu_before = cpu_seconds(daemon.pid)
            polls_cpu_s = (cpu1 - cpu0) / (t1 - t0)  # what polling costs meanwhile, taken off
            began = time.time()
            for _ in range(args.scrapes):
                t = time.time()
                out = subprocess.run([f"{args.build}/tools/firegatectl", "-s", f"{work}/control.sock", "metrics"],
                                     capture_output=True, check=True).stdout
                times.append((time.time() - t) * 1000)
                sizes.append(len(out))
            spent = cpu_seconds(daemon.pid) - cpu_before - polls_cpu_s * (time.time() - began)
            scrape = {"scrape_bytes": statistics.median(sizes), "scrape_ms_p50": round(statistics.median(times), 1),
                      "scrape_ms_max": round(max(times), 1),
                      "firegated_cpu_ms_per_scrape": round(1000 * spent / args.scrapes, 1)}

        # What was stored in the window, as firegatectl exports it through the control socket (the
        # store's own reading, not the database behind its back), once the window's last flush is in
        # (flush_interval_ms is 5 s by default; a large fleet flushes sooner, at 4,000 readings).
        time.sleep(6)
        readings, polls = stored_in(args.build, work, t0, t1)
        all_readings, _ = stored_in(args.build, work, 0, time.time() + 60)
        outage = {}
        log = f"{work}/firegated.log"
        rss = lambda: round(memory_kib(daemon.pid)["VmRSS"] / 1024, 1)
        # A bus whose line could not be opened tells one bus fault and says "bus online" when it opens;
        # with the simulator stopped the connections stand and each device times out and is told on its own.
        fault, back = ("type=bus_offline", "bus online") if args.outage_mode == "kill" else \
            ("type=device_offline", "device online")
        for cycle in range(args.outage_cycles if args.outage else 0):
            # Each bus tries its line again after 0.25 s, doubling to 2 s (docs/rs485.md, "The adapter"),
            # and tells one bus fault once its pending limit (10 s for a one-device bus) has run out.
            text = open(log).read()
            faults0, open_failed0 = text.count(fault), text.count("modbus open failed")
            if args.outage_mode == "kill":
                sim.kill()
                sim.wait()
            else:
                sim.send_signal(signal.SIGSTOP)
            time.sleep(20)
            lines0, (c0, _), o0, rss0 = sum(1 for _ in open(log)), cpu_and_kernel_seconds(daemon.pid), time.time(), rss()
            time.sleep(args.outage)
            lines1, (c1, _), o1 = sum(1 for _ in open(log)), cpu_and_kernel_seconds(daemon.pid), time.time()
            text = open(log).read()
            # Each figure is this outage's; with several, a list of them, one an outage.
            for key, value in [("outage_s", round(o1 - o0, 1)),
                               ("outage_cpu_percent", round(100 * (c1 - c0) / (o1 - o0), 2)),
                               ("outage_log_lines_per_s", round((lines1 - lines0) / (o1 - o0), 2)),
                               ("outage_faults_told", text.count(fault) - faults0),
                               ("outage_open_failed_lines", text.count("modbus open failed") - open_failed0),
                               # RSS as the measured stretch begins and as it ends: growth within it is the tries'.
                               ("outage_rss_mib_start", rss0), ("outage_rss_mib", rss())]:
                outage.setdefault(key, []).append(value)
            if cycle + 1 < args.outage_cycles:
                told, online = text.count(fault) - faults0, text.count(back)
                if args.outage_mode == "kill":
                    sim = start_sim(f"sim-{cycle + 1}.log")
                else:
                    sim.send_signal(signal.SIGCONT)
                wait_for(lambda: open(log).read().count(back) >= online + told, 90, "every fault of the outage ended")
                time.sleep(10)  # the backlog of the outage's events sent, polling steady again
                outage.setdefault("recovered_rss_mib", []).append(rss())
        outage = {k: v[0] if len(v) == 1 else v for k, v in outage.items()}
        if args.outage and args.outage_mode == "stop":
            sim.send_signal(signal.SIGCONT)  # a stopped process would not end on the SIGTERM of the cleanup
        daemon.terminate()
        daemon.wait(timeout=20)
        table_bytes, file_bytes = disk_use(f"{work}/firegate.db")
        window = t1 - t0
        stats = [float(m.group(1)) for m in re.finditer(r"stats requests=\d+ per_s=([\d.]+)", open(f"{work}/sim.log").read())]
        requests_per_s = statistics.median(stats[-int(args.seconds):]) if stats else 0
        result = {
            "devices": args.devices, "ports": nports, "per_port": args.per_port,
            "alarm_ms": args.alarm_ms, "poll_ms": args.poll_ms, "window_s": round(window, 1),
            "polls_per_s": round(polls / window, 1), "readings_per_s": round(readings / window, 1),
            "requests_per_device_per_s": round(requests_per_s / args.devices, 2),
            "firegated_cpu_percent": round(100 * (cpu1 - cpu0) / window, 2),
            "firegated_cpu_us_per_poll": round(1e6 * (cpu1 - cpu0) / polls, 1) if polls else None,
            # Of it, the kernel's time for the process (its sockets, system calls, page faults).
            "firegated_kernel_us_per_poll": round(1e6 * (kernel1 - kernel0) / polls, 1) if polls else None,
            "firegated_rss_mib": round(mem["VmRSS"] / 1024, 1), "firegated_peak_rss_mib": round(mem["VmHWM"] / 1024, 1),
            "firegated_pss_mib": round(mem["Pss"] / 1024, 1),
            "firegated_private_dirty_mib": round(mem["Private_Dirty"] / 1024, 1),
            "sim_cpu_percent": round(100 * (sim1 - sim0) / window, 2),
            "broker_cpu_percent": round(100 * (broker1 - broker0) / window, 2),
            "disk_write_kib_per_s": round((written1 - written0) / window / 1024, 1),
            "reading_kib_per_s": round(8 * readings / window / 1024, 1),
            "write_amplification": round((written1 - written0) / (8 * readings), 2) if readings else None,
            "table_bytes_per_reading": round(table_bytes / all_readings, 1) if all_readings else None,
            "file_bytes_per_reading": round(file_bytes / all_readings, 1) if all_readings else None,
        }
        result.update(scrape)
        result.update(outage)
        if latencies:
            result.update({"fires": args.fires, "alarms_received": len(latencies), **latency_fields(latencies)})
        if args.markdown:
            keys = list(result)
            print("| " + " | ".join(keys) + " |")
            print("|" + "---|" * len(keys))
            print("| " + " | ".join(str(result[k]) for k in keys) + " |")
        else:
            print(json.dumps(result))
    finally:
        stop_all(procs, work, args.keep)


if __name__ == "__main__":
    main()
