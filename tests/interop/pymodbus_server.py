#!/usr/bin/python3
"""An independent Modbus server for interoperation tests: pymodbus (Debian's python3-pymodbus).

Serves unit 1 as an SD-1 smoke detector (input registers 0-3) and unit 2 as an EFD-4T
electrical-fire detector (holding registers 0x0000-0x0011, 0x0100-0x0106, 0x0120), over Modbus
TCP (--port) or Modbus RTU on a serial device (--serial). Standard input takes changes, one a line:
"UNIT TABLE ADDRESS VALUE" with TABLE 3 (holding) or 4 (input). Each applied change is printed.
"""
import argparse
import logging
import sys
import threading

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartSerialServer, StartTcpServer
from pymodbus.transaction import ModbusRtuFramer


def sd1():
    return ModbusSlaveContext(
        ir=ModbusSequentialDataBlock(0, [0, 37, 215, 2400]),
        hr=ModbusSequentialDataBlock(0, [0] * 0x11),
        zero_mode=True)


def efd4t():
    holding = [0] * 0x121
    holding[0x0000] = 35      # residual current, mA
    holding[0x0001] = 281     # cable temperature 1, 0.1 degC
    holding[0x0100] = 300     # leakage alarm setting, mA
    holding[0x0106] = 1       # mode: alarm
    return ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, holding),
                              ir=ModbusSequentialDataBlock(0, [0]), zero_mode=True)


def read_changes(context):
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 4:
            continue
        unit, table, address, value = (int(p, 0) for p in parts)
        context[unit].setValues(table, address, [value])
        print(f"change unit={unit} table={table} address={address} value={value}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int)
    parser.add_argument("--serial")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    context = ModbusServerContext(slaves={1: sd1(), 2: efd4t()}, single=False)
    threading.Thread(target=read_changes, args=(context,), daemon=True).start()
    if args.serial:
        print(f"serving rtu serial={args.serial}", flush=True)
        StartSerialServer(context=context, framer=ModbusRtuFramer, port=args.serial, baudrate=9600)
    else:
        print(f"serving tcp port={args.port}", flush=True)
        # The test keeps the port reserved by a bound socket of its own (free_port): binding beside
        # it takes SO_REUSEADDR, which pymodbus leaves off by default.
        StartTcpServer(context=context, address=("127.0.0.1", args.port), allow_reuse_address=True)


if __name__ == "__main__":
    main()
