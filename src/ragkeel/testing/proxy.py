"""A small round-robin TCP proxy on loopback: ``make cluster``'s front door to its replicas
(issue 13). Each accepted connection goes to the next upstream in turn (one that refuses is
skipped for that connection); bytes are copied both ways until either side closes. It balances
connections, not requests: a client that keeps one connection alive stays on one replica, as
behind any layer-4 balancer. For development and tests; in production put the replicas behind
the load balancer you already run.

    python -m ragkeel.testing.proxy --listen 8000 127.0.0.1:8101 127.0.0.1:8102
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
from collections.abc import Sequence

CHUNK = 64 * 1024


class RoundRobinProxy:
    def __init__(self, upstreams: Sequence[tuple[str, int]]) -> None:
        if not upstreams:
            raise ValueError("at least one upstream")
        self.upstreams = list(upstreams)
        self._next = itertools.cycle(range(len(self.upstreams)))

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in self.upstreams:  # the next one in turn; a refusing one is skipped
            host, port = self.upstreams[next(self._next)]
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection(host, port)
                break
        if upstream is None:
            client_w.close()
            return
        up_r, up_w = upstream
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))

    async def serve(self, host: str, port: int) -> None:
        server = await asyncio.start_server(self.handle, host, port)
        async with server:
            await server.serve_forever()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragkeel.testing.proxy")
    parser.add_argument("--listen", required=True, help="[HOST:]PORT (host default 127.0.0.1)")
    parser.add_argument("upstreams", nargs="+", help="HOST:PORT of each replica")
    args = parser.parse_args(argv)
    host, port = _address(args.listen)
    proxy = RoundRobinProxy([_address(u) for u in args.upstreams])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(proxy.serve(host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
