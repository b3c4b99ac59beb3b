"""A trivial HTTP/1.1 server for benchmarks/gateway.py: the load generator's ceiling.

Usage: python _gateway_echo.py  ->  prints "listening on http://127.0.0.1:PORT", serves until
killed. Every request gets the same small JSON answer; the server reads only where a request
ends (Content-Length), so it costs far less per request than any real server, and the
generator's rate against it is the most the generator can measure on this machine.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

BODY = b'{"predictions":[0]}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"x-shipyard-model-version: echo/0\r\ncontent-length: " + str(len(BODY)).encode() + b"\r\n\r\n"
) + BODY


class Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : None if stop < 0 else stop])
            if len(buf) < end + 4 + length:
                return
            del buf[: end + 4 + length]
            self.transport.write(ANSWER)


async def serve() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.get_running_loop().create_server(Echo, sock=sock, backlog=1024)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> int:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
