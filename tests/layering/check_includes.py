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

# Where each part lives: the first pattern that matches a path (from the source folder) names its
# part. A file of daemon/, drivers/ or tools/ that none matches is an error: a new folder gets its
# row here and in docs/architecture.md. tests/ may include anything.
PARTS = [
    (r"daemon/domain/", "domain"),
    (r"daemon/config/", "config"),
    (r"daemon/gb26875/", "gb26875_codec"),
    (r"daemon/mqtt_client/", "mqtt_client"),
    (r"daemon/rules/", "rules"),
    (r"daemon/store/", "store"),
    (r"daemon/uplink/mqtt/", "uplink_mqtt"),
    (r"daemon/uplink/gb26875/", "uplink_gb26875"),
    (r"daemon/uplink/registry\.cpp$", "uplink_registry"),
    (r"daemon/uplink/[^/]+$", "uplink"),  # what the uplinks share; each uplink is a folder of its own
    (r"daemon/control/", "control"),
    (r"daemon/app/", "app"),
    (r"daemon/main\.cpp$", "main"),
    (r"drivers/modbus/codec/", "modbus_codec"),
    (r"drivers/modbus/modbus_error\.", "modbus_codec"),
    (r"drivers/modbus/", "driver_modbus"),
    (r"drivers/mqtt/", "driver_mqtt"),
    (r"drivers/driver\.hpp$", "driver_api"),
    (r"drivers/registry\.cpp$", "driver_registry"),
    (r"tools/bench/", "bench"),
    (r"tools/", "tools"),
]

# The parts each part may use directly; what those may use, it may use too.
ARROWS = {
    "domain": [],
    "config": ["domain"],
    "gb26875_codec": [],
    "modbus_codec": [],
    "mqtt_client": ["config"],
    "driver_api": ["config"],
    "driver_modbus": ["driver_api", "modbus_codec"],
    "driver_mqtt": ["driver_api", "mqtt_client"],
    "driver_registry": ["driver_modbus", "driver_mqtt"],
    "rules": ["config"],
    "store": ["domain"],
    "uplink": ["store", "config"],
    "uplink_mqtt": ["uplink", "config", "mqtt_client"],
    "uplink_gb26875": ["uplink", "config", "gb26875_codec"],
    "uplink_registry": ["uplink_mqtt", "uplink_gb26875"],
    "control": ["config"],
    "app": ["driver_registry", "rules", "store", "uplink_registry", "control"],
    "main": ["app"],
    # What a technician, a test peer or a demo runs reaches the daemon through its socket, its CLI
    # and its files. It may share what reads and writes those files and the field's wire (the
    # configuration's loader, the profiles, the drivers' transports, the codecs): nothing of the
    # daemon's own parts (rules, store, uplinks, control, app).
    "tools": ["driver_registry", "gb26875_codec"],
    # A benchmark of one part links that part: store_bench measures the store through its API.
    "bench": ["store"],
}

# Included names are looked for next to the file (quoted includes only), then in the include roots
# the targets give. A name found in neither is a system or library header.
ROOTS = ["daemon", "drivers"]
SOURCES = (".cpp", ".hpp", ".h", ".hh", ".cc", ".cxx", ".ipp", ".inc")


def part_of(path):
    for pattern, part in PARTS:
        if re.match(pattern, path):
            return part
    return None


def allowed(part):
    seen, todo = {part}, [part]
    while todo:
        for used in ARROWS[todo.pop()]:
            if used not in seen:
                seen.add(used)
                todo.append(used)
    return seen


def resolve(exists, path, name, quoted):
    for base in ([os.path.dirname(path)] if quoted else []) + ROOTS:
        candidate = os.path.normpath(os.path.join(base, name))
        if exists(candidate):
            return candidate
    return None


def violations(files, read, exists):
    """(file, line, include, the part it reaches or a reason, the part) for each include not allowed."""
    out = []
    for path in files:
        part = part_of(path)
        if part is None:
            out.append((path, 0, "", "unmapped file", None))
            continue
        may = allowed(part)
        for number, line in enumerate(read(path).splitlines(), 1):
            m = re.match(r"\s*#\s*include\s*(.*)", line)
            if not m:
                continue
            spec = re.match(r'"([^"]+)"|<([^>]+)>', m.group(1))
            if not spec:
                out.append((path, number, m.group(1).strip(), "not a literal name", part))
                continue
            quoted = spec.group(1) is not None
            name = spec.group(1) or spec.group(2)
            target = resolve(exists, path, name, quoted)
            if target is None:
                if quoted:
                    out.append((path, number, name, "not found", part))
                continue  # <...> of a library
            used = part_of(target)
            if used is None:
                out.append((path, number, name, "unmapped file", part))
            elif used not in may:
                out.append((path, number, name, used, part))
    return out


def self_test():
    tree = {
        "daemon/store/store.hpp": '#include "domain/event.hpp"\n',
        "daemon/domain/event.hpp": "",
        "daemon/rules/engine.cpp": '#include "domain/event.hpp"\n#include "store/store.hpp"\n',
        "drivers/modbus/bus.cpp": '#include "../driver.hpp"\n#include <uplink/mqtt/payloads.hpp>\n#include <vector>\n',
        "drivers/mqtt/ingest.h": '#include "modbus/bus.cpp"\n#  include HEADER\n',
        "drivers/driver.hpp": '#include "config/config.hpp"\n',
        "daemon/config/config.hpp": '#include "domain/event.hpp"\n',
        "daemon/uplink/mqtt/payloads.hpp": '#include "missing.hpp"\n',
        "daemon/uplink/order.hpp": '#include "store/store.hpp"\n',
        "daemon/uplink/gb26875/gb.cpp": '#include "uplink/order.hpp"\n#include "uplink/mqtt5/m5.hpp"\n',
        "daemon/uplink/mqtt5/m5.hpp": "",
        "daemon/extra/x.cpp": "",
        "tools/firegatectl/main.cpp": '#include "modbus/bus.cpp"\n#include "app/application.hpp"\n',
        "daemon/app/application.hpp": '#include "store/store.hpp"\n#include "uplink/mqtt/payloads.hpp"\n',
    }
    found = violations(sorted(tree), lambda p: tree[p], lambda p: p in tree)
    expected = [
        ("daemon/extra/x.cpp", 0, "", "unmapped file", None),
        ("daemon/rules/engine.cpp", 2, "store/store.hpp", "store", "rules"),
        ("daemon/uplink/gb26875/gb.cpp", 2, "uplink/mqtt5/m5.hpp", "unmapped file", "uplink_gb26875"),
        ("daemon/uplink/mqtt/payloads.hpp", 1, "missing.hpp", "not found", "uplink_mqtt"),
        ("daemon/uplink/mqtt5/m5.hpp", 0, "", "unmapped file", None),
        ("drivers/modbus/bus.cpp", 2, "uplink/mqtt/payloads.hpp", "uplink_mqtt", "driver_modbus"),
        ("drivers/mqtt/ingest.h", 1, "modbus/bus.cpp", "driver_modbus", "driver_mqtt"),
        ("drivers/mqtt/ingest.h", 2, "HEADER", "not a literal name", "driver_mqtt"),
        ("tools/firegatectl/main.cpp", 2, "app/application.hpp", "app", "tools"),
    ]
    if sorted(found, key=str) != sorted(expected, key=str):
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
            files += [os.path.join(folder, n) for n in names if n.endswith(SOURCES)]
    if len(files) < 50 or not any(f.startswith("daemon/app/") for f in files):
        print(f"check_includes.py: only {len(files)} source files under {os.getcwd()}: wrong folder?")
        return 2

    def read(path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    found = violations(sorted(files), read, os.path.isfile)
    for path, number, name, used, part in found:
        if part is None:
            print(f"{path}: belongs to no part; give its folder a row in PARTS (and docs/architecture.md)")
            continue
        may = ", ".join(sorted(allowed(part) - {part})) or "nothing of firegate's"
        if used == "not found":
            print(f'{path}:{number}: "{name}" is not a file next to it or under daemon/ or drivers/')
        elif used == "not a literal name":
            print(f"{path}:{number}: #include {name}: name the header, so that its part can be checked")
        elif used == "unmapped file":
            print(f'{path}:{number}: "{name}" belongs to no part; give its folder a row in PARTS')
        else:
            print(f'{path}:{number}: {part} may not include "{name}" ({used}); {part} may use: {may}')
    if found:
        print(f"{len(found)} include(s) cross the parts' arrows (docs/architecture.md, \"The house\")")
        return 1
    print(f"{len(files)} files: every include follows the parts' arrows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
