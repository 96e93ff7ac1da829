#!/usr/bin/python3
"""An independent Modbus master for interoperation tests: pymodbus (Debian's python3-pymodbus).

Reads firegate-sim over Modbus TCP (--port) or RTU (--serial) and prints one JSON object: SD-1's
input registers at unit 1 (fc 04 and fc 03), the exception for an address it does not have, and
the answer to writing its reset command (fc 06).
"""
import argparse
import json

from pymodbus.client import ModbusSerialClient, ModbusTcpClient


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int)
    parser.add_argument("--serial")
    args = parser.parse_args()
    if args.serial:
        client = ModbusSerialClient(method="rtu", port=args.serial, baudrate=9600, timeout=1)
    else:
        client = ModbusTcpClient("127.0.0.1", port=args.port, timeout=1)
    if not client.connect():
        raise SystemExit("cannot connect")
    out = {}
    r = client.read_input_registers(0, 4, slave=1)
    out["fc04"] = None if r.isError() else r.registers
    r = client.read_holding_registers(0, 4, slave=1)
    out["fc03"] = None if r.isError() else r.registers
    r = client.read_input_registers(0x0200, 1, slave=1)
    out["missing_exception"] = getattr(r, "exception_code", None)
    r = client.write_register(0x0010, 2, slave=1)
    out["reset"] = None if r.isError() else [r.address, r.value]
    r = client.write_register(0x0010, 9, slave=1)
    out["bad_command_exception"] = getattr(r, "exception_code", None)
    client.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
