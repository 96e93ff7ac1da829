#!/usr/bin/python3
"""An HTTP client that is not firegate's (Python's own http.client), for the metrics endpoint's
system test. Prints one line a response: STATUS CONTENT-LENGTH BODY-BYTES CONTENT-TYPE, then with
--body the body of the last one.

Usage: http_probe.py PORT PATH [--method GET|HEAD|POST] [--twice] [--idle N] [--body]
  --twice   two requests on one kept-alive connection (the second line is the second answer)
  --idle N  first opens N connections that send nothing, and keeps them open meanwhile
"""
import argparse
import http.client
import socket
import sys

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("path")
parser.add_argument("--method", default="GET")
parser.add_argument("--twice", action="store_true")
parser.add_argument("--idle", type=int, default=0)
parser.add_argument("--body", action="store_true")
args = parser.parse_args()

idle = [socket.create_connection(("127.0.0.1", args.port), timeout=10) for _ in range(args.idle)]
conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
body = b""
for _ in range(2 if args.twice else 1):
    conn.request(args.method, args.path)
    r = conn.getresponse()
    body = r.read()
    print(r.status, r.getheader("Content-Length"), len(body), r.getheader("Content-Type"))
conn.close()
for s in idle:
    s.close()
if args.body:
    sys.stdout.write(body.decode())
