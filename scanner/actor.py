"""Who is acting: the user@host written into audit entries and custody records.

A module of its own so that light commands (acquisition) need not import the registry's stack.
"""

from __future__ import annotations

import getpass
import os
import socket


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"
