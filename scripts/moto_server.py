"""Runs the moto server on 127.0.0.1:<port> until our parent goes away.

The test harness and the demo start this with a pipe on stdin; when the parent exits (even
on a crash or a killed test process) the pipe closes and this process exits with it, so no
emulator is ever left behind.
"""

import os
import sys
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto ready on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent is gone
    os._exit(0)


if __name__ == "__main__":
    main()
