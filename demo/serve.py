"""Serve a folder on loopback, as a seller's share link would, while one command runs.

`/share/NAME` answers 302 to `/dl/NAME`, which answers 307 to `/NAME`: two redirect hops, as
cloud drives make them. Every `{url}` in the command is replaced by the server's base URL.
The server stops when the command ends; the exit code is the command's. Nothing leaves the
machine: the server listens on 127.0.0.1 only, which facetrace refuses to download from unless
the command names it as a lab network (--lab-network 127.0.0.1/32), as the Makefile's demo does.

Usage: python demo/serve.py DIR -- COMMAND...  (e.g. facetrace scan --lab-network 127.0.0.1/32 '{url}/share/x.zip')
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _ShareLinks(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        for prefix, status, to in (("/share/", 302, "/dl/"), ("/dl/", 307, "/")):
            if self.path.startswith(prefix):
                self.send_response(status)
                self.send_header("Location", to + self.path[len(prefix) :])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        name = self.path.split("?")[0].lstrip("/")
        if "/" in name or not (Path(self.directory) / name).is_file():  # one folder's files, no listing
            self.send_error(404)
            return
        super().do_GET()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit(__doc__.strip().splitlines()[-1])
    folder, command = argv[0], argv[2:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_ShareLinks, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    exe = Path(sys.executable).parent / command[0]
    command = [
        str(exe) if exe.exists() else shutil.which(command[0]) or command[0],
        *(a.replace("{url}", base) for a in command[1:]),
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    try:
        return subprocess.run(command, env=env).returncode
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
