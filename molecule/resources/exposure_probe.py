#!/usr/bin/env python3
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""exposure_probe.py HOST PEER ADDRESS OUTFILE LABEL: what PEER can reach of HOST, right now.

HOST and PEER are the scenario's containers. The TCP ports HOST listens on (any address but
loopback, read from /proc/net/tcp{,6}: no iproute2 needed on the host) are each tried from PEER
with a real TCP handshake to ADDRESS, all at once (a dropped SYN costs the 2 s timeout once).
One JSON line {label, listening, reachable} is appended to OUTFILE. Used by the role_checkpoint
callback (issue #9: fail closed at every role boundary).
"""

import json
import subprocess
import sys

LISTENING = r"""
ports = set()
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(name).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and address not in ("0100007F", "00000000000000000000000001000000"):
            ports.add(int(port, 16))
print(" ".join(str(p) for p in sorted(ports)))
"""

REACHABLE = r"""
import socket, sys, threading
address, ports, open_ = sys.argv[1], [int(p) for p in sys.argv[2:]], []
def knock(port):
    try:
        socket.create_connection((address, port), timeout=2).close()
        open_.append(port)
    except OSError:
        pass
threads = [threading.Thread(target=knock, args=(p,)) for p in ports]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(str(p) for p in sorted(open_)))
"""


def docker_python(container, code, *args):
    out = subprocess.run(["docker", "exec", container, "python3", "-c", code, *args],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [int(p) for p in out.split()]


def main(host, peer, address, outfile, label):
    listening = docker_python(host, LISTENING)
    reachable = docker_python(peer, REACHABLE, address, *map(str, listening)) if listening else []
    with open(outfile, "a", encoding="utf-8") as out:
        out.write(json.dumps({"label": label, "listening": listening, "reachable": reachable}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
