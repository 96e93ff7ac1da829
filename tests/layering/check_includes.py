#!/usr/bin/python3
"""Every #include "..." in daemon/, drivers/ and tools/ must follow the arrows between firegate's
parts (docs/architecture.md, "The house"). The CMake targets link the same arrows; this check also
catches a header-only include, which links without complaint.

Usage: check_includes.py SOURCE_DIR. Prints each include that crosses a forbidden line (file:line,
what it includes, and which parts that part may use) and exits 1; exits 0 when there is none.
Before reading the tree it checks itself on a made-up one, so that a check that finds nothing
because it looks at nothing fails too.
"""

import os
import re
import sys

# Where each part lives: the longest matching prefix wins. tests/ may include anything.
PARTS = [
    ("daemon/domain/", "domain"),
    ("daemon/config/", "config"),
    ("daemon/gb26875/", "gb26875_codec"),
    ("daemon/mqtt_client/", "mqtt_client"),
    ("daemon/rules/", "rules"),
    ("daemon/store/", "store"),
    ("daemon/uplink/mqtt/", "uplink_mqtt"),
    ("daemon/uplink/gb26875/", "uplink_gb26875"),
    ("daemon/uplink/", "uplink"),
    ("daemon/control/", "control"),
    ("daemon/app/", "app"),
    ("daemon/main.cpp", "main"),
    ("drivers/modbus/codec/", "modbus_codec"),
    ("drivers/modbus/modbus_error.", "modbus_codec"),
    ("drivers/", "drivers"),
    ("tools/bench/", "bench"),
    ("tools/", "tools"),
]

# The parts each part may use directly; what those may use, it may use too.
ARROWS = {
    "domain": [],
    "config": ["domain"],
    "gb26875_codec": [],
    "modbus_codec": [],
    "mqtt_client": ["config"],
    "drivers": ["config", "modbus_codec", "mqtt_client"],
    "rules": ["config"],
    "store": ["domain"],
    "uplink": ["store"],
    "uplink_mqtt": ["uplink", "config", "mqtt_client"],
    "uplink_gb26875": ["uplink", "config", "gb26875_codec"],
    "control": ["config"],
    "app": ["drivers", "rules", "store", "uplink_mqtt", "uplink_gb26875", "control"],
    "main": ["app"],
    # What a technician, a test peer or a demo runs reaches the daemon through its socket, its CLI
    # and its files; it may share the codecs and the drivers' profiles, nothing of the daemon.
    "tools": ["drivers", "gb26875_codec", "modbus_codec"],
    # A benchmark of one part links that part: store_bench measures the store through its API.
    "bench": ["store"],
}

# Quoted includes are looked for next to the file, then in the include roots the targets give.
ROOTS = ["daemon", "drivers"]


def part_of(path):
    best = None
    for prefix, part in PARTS:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, part)
    return best[1] if best else None


def allowed(part):
    seen, todo = {part}, [part]
    while todo:
        for used in ARROWS[todo.pop()]:
            if used not in seen:
                seen.add(used)
                todo.append(used)
    return seen


def resolve(exists, path, name):
    for base in [os.path.dirname(path)] + ROOTS:
        candidate = os.path.normpath(os.path.join(base, name))
        if exists(candidate):
            return candidate
    return None


def violations(files, read, exists):
    """(file, line, include, resolved part or None, the part) for each include not allowed."""
    out = []
    for path in files:
        part = part_of(path)
        if part is None:
            continue
        may = allowed(part)
        for number, line in enumerate(read(path).splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = resolve(exists, path, m.group(1))
            if target is None:
                out.append((path, number, m.group(1), None, part))
                continue
            used = part_of(target)
            if used is not None and used not in may:
                out.append((path, number, m.group(1), used, part))
    return out


def self_test():
    tree = {
        "daemon/store/store.hpp": '#include "domain/event.hpp"\n',
        "daemon/domain/event.hpp": "",
        "daemon/rules/engine.cpp": '#include "domain/event.hpp"\n#include "store/store.hpp"\n',
        "drivers/modbus/bus.cpp": '#include "../driver.hpp"\n#include "uplink/mqtt/payloads.hpp"\n',
        "drivers/driver.hpp": '#include "config/config.hpp"\n',
        "daemon/config/config.hpp": '#include "domain/event.hpp"\n',
        "daemon/uplink/mqtt/payloads.hpp": '#include "missing.hpp"\n',
        "tools/firegatectl/main.cpp": '#include "modbus/bus.cpp"\n#include "app/application.hpp"\n',
        "daemon/app/application.hpp": '#include "store/store.hpp"\n#include "uplink/mqtt/payloads.hpp"\n',
    }
    found = violations(sorted(tree), lambda p: tree[p], lambda p: p in tree)
    expected = [
        ("daemon/rules/engine.cpp", 2, "store/store.hpp", "store", "rules"),
        ("daemon/uplink/mqtt/payloads.hpp", 1, "missing.hpp", None, "uplink_mqtt"),
        ("drivers/modbus/bus.cpp", 2, "uplink/mqtt/payloads.hpp", "uplink_mqtt", "drivers"),
        ("tools/firegatectl/main.cpp", 2, "app/application.hpp", "app", "tools"),
    ]
    if sorted(found) != sorted(expected):
        print("check_includes.py: its self-test failed; found", found, file=sys.stderr)
        sys.exit(2)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    self_test()
    os.chdir(sys.argv[1])
    files = []
    for top in ("daemon", "drivers", "tools"):
        for folder, _, names in os.walk(top):
            files += [os.path.join(folder, n) for n in names if n.endswith((".cpp", ".hpp"))]
    if len(files) < 50 or not any(f.startswith("daemon/app/") for f in files):
        print(f"check_includes.py: only {len(files)} source files under {os.getcwd()}: wrong folder?")
        return 2

    def read(path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    found = violations(sorted(files), read, os.path.isfile)
    for path, number, name, used, part in found:
        may = ", ".join(sorted(allowed(part) - {part})) or "nothing of firegate's"
        if used is None:
            print(f'{path}:{number}: "{name}" is not a file next to it or under daemon/ or drivers/')
        else:
            print(f'{path}:{number}: {part} may not include "{name}" ({used}); {part} may use: {may}')
    if found:
        print(f"{len(found)} include(s) cross the parts' arrows (docs/architecture.md, \"The house\")")
        return 1
    print(f"{len(files)} files: every include follows the parts' arrows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
