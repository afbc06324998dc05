"""Faults between an operator and the API server, injected by a proxy it connects through.

- `Blackhole`: a TCP proxy (TLS passes through untouched) that can be cut like
  a network partition: while cut, bytes go nowhere and new connections hang,
  so the operator's calls time out rather than fail fast.
- `FaultyApi`: an HTTP proxy that speaks to the API server with the admin's
  credentials and answers a share of the writes (POST, PUT, PATCH, DELETE)
  itself, with 500 or 429 (`Retry-After: 1`), as an overloaded API server
  does. Reads and watches pass, streamed.
Each writes a kubeconfig that points an operator at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml
from aiohttp import web
from bench.kube import Kube

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HOP_HEADERS = {"host", "authorization", "content-length", "transfer-encoding", "connection"}


def kubeconfig_for(source: str, server: str, path: Path, *, credentials: bool = True) -> str:
    """A copy of the kubeconfig `source` whose server is `server`."""
    config = yaml.safe_load(Path(source).read_text())
    for cluster in config.get("clusters") or []:
        cluster["cluster"]["server"] = server
        if not credentials:
            for key in ("certificate-authority", "certificate-authority-data"):
                cluster["cluster"].pop(key, None)
    if not credentials:
        for user in config.get("users") or []:
            user["user"] = {}
    path.write_text(yaml.safe_dump(config))
    return str(path)


class Blackhole:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.listening = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listening = self._server.sockets[0].getsockname()[1]

    def kubeconfig(self, source: str, path: Path) -> str:
        return kubeconfig_for(source, f"https://127.0.0.1:{self.listening}", path)

    def partition(self) -> None:
        self.cut = True

    def heal(self) -> None:
        """Let traffic through again; held connections are closed, so clients reconnect."""
        self.cut = False
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while self.cut:  # a partition: the connection hangs
                if writer.is_closing():
                    return
                await asyncio.sleep(0.1)
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
            self._writers.add(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer,):
                w.close()
            self._writers.discard(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.cut:
                    continue  # dropped on the floor
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


class FaultyApi:
    def __init__(self, kube: Kube, *, failing: float, seed: int = 7) -> None:
        self._kube = kube
        self.failing = failing
        self._random = random.Random(seed)
        self.writes = 0
        self.injected: dict[int, int] = {500: 0, 429: 0}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self) -> None:
        ssl_context: ssl.SSLContext = self._kube._ssl
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context, limit=256),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]

    def kubeconfig(self, source: str, path: Path) -> str:
        return kubeconfig_for(source, f"http://127.0.0.1:{self.port}", path, credentials=False)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.method in WRITES:
            self.writes += 1
            if self._random.random() < self.failing:
                code = self._random.choice((500, 429))
                self.injected[code] += 1
                body = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": "injected by the chaos proxy",
                    "reason": "InternalError" if code == 500 else "TooManyRequests",
                    "code": code,
                }
                headers = {"Retry-After": "1"} if code == 429 else {}
                return web.json_response(body, status=code, headers=headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        data = await request.read()
        if data and "Content-Type" not in request.headers:
            # The official client sends some bodies without a type, which the API server reads
            # as JSON; aiohttp would label them application/octet-stream, which it refuses.
            headers["Content-Type"] = "application/json"
        async with self._session.request(
            request.method,
            self._kube.server + request.path_qs,
            data=data or None,
            headers=headers,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_HEADERS:
                    response.headers[key] = value
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the operator closed the stream (a watch it ended): nothing to forward to
            return response
