"""``collapselab leaderboard serve``: preview a built site over HTTP on localhost.

The site also works opened from disk; serving it shows it as a web host would.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
from pathlib import Path


def serve(directory: Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve ``directory`` until interrupted (Ctrl-C)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        print(f"serving {directory} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
