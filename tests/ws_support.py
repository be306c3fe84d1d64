"""A real API server (api.server.run in a subprocess) and a graphql-transport-ws client, for
the subscription tests (no tests here)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.faultproxy import free_port

PROTOCOL = "graphql-transport-ws"


@dataclass
class Server:
    url: str  # http://127.0.0.1:port
    proc: subprocess.Popen[bytes]
    log: Path  # its stderr

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    def rss_kib(self) -> int:
        """The server process's resident memory."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """User + system CPU seconds the server has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def api_server(dsn: str, **env: str) -> Iterator[Server]:
    """`api.server.run` on a free port with extra environment (AAVE_API_... limits); its
    log goes to a file (a pipe nobody reads would stall it)."""
    port = free_port()
    code = f"from api.server import run; run('127.0.0.1', {port}, {dsn!r}, [])"
    log = Path(tempfile.mkstemp(prefix="api-server-", suffix=".log")[1])
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start") from None
                time.sleep(0.05)
        yield Server(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


async def metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    text = (await http.get("/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def wait_metric(
    http: httpx.AsyncClient, name: str, value: float, timeout: float = 10, **labels: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = await metric(http, name, **labels)
        if got == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {got}, expected {value}")
        await asyncio.sleep(0.02)


class WsClient:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, *, init: bool = True, **kwargs: Any) -> WsClient:
        ws = await connect(url, subprotocols=[PROTOCOL], ping_interval=None, **kwargs)  # type: ignore[list-item]
        client = cls(ws)
        if init:
            await client.send({"type": "connection_init"})
            ack = await client.recv()
            assert ack == {"type": "connection_ack"}, ack
        return client

    async def send(self, message: object) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        value: dict[str, Any] = json.loads(raw)
        return value

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def close(self) -> None:
        await self.ws.close()


async def close_code(client: WsClient, timeout: float = 10) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(client.ws.recv(), deadline - time.monotonic())
    except Exception:  # ConnectionClosed, or the timeout
        pass
    rcvd = client.ws.protocol.close_rcvd
    if rcvd is None:
        return None, ""
    return rcvd.code, rcvd.reason


class RawWs:
    """A graphql-transport-ws client on a bare socket, which reads only when told to: a
    client that stops reading, as far as the server can tell (a tiny receive buffer and
    nothing read)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, rcvbuf: int = 4096) -> RawWs:
        host, port = url.removeprefix("ws://").split("/", 1)[0].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)  # 8 KiB read ahead
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        raw = cls(reader, writer)
        await raw.send({"type": "connection_init"})
        assert json.loads((await raw.frame())[1]) == {"type": "connection_ack"}
        return raw

    async def send(self, message: object) -> None:
        data = json.dumps(message).encode()
        mask = os.urandom(4)
        size = len(data)
        if size < 126:
            head = struct.pack("!BB", 0x81, 0x80 | size)
        elif size < 2**16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(head + mask + body)
        await self.writer.drain()

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked): opcode and payload."""
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(size)

    async def close_code(self, timeout: float = 10) -> tuple[int | None, str, int]:
        """Read everything up to the server's close frame: its code, reason and how many
        messages came before it (None when the connection ended without one)."""
        messages = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    opcode, payload = await self.frame()
                    if opcode == 0x8:
                        code = struct.unpack("!H", payload[:2])[0] if payload else None
                        return code, payload[2:].decode(errors="replace"), messages
                    messages += 1
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return None, "", messages

    def close(self) -> None:
        self.writer.close()
