"""A small asynchronous Kubernetes client for the benchmark (aiohttp).

The harness submits thousands of objects and follows them through watches; the
synchronous `kubernetes` client in threads would cost more CPU on the same two
cores the control plane uses. This client is the "minimal asynchronous client"
of the limit phase too, so every phase submits through the same code path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

RETRY_STATUS = {429, 500, 502, 503, 504}


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


def _ssl_context(kubeconfig: dict[str, Any], tmp: Path) -> tuple[str, ssl.SSLContext]:
    ctx_name = kubeconfig["current-context"]
    context = next(c["context"] for c in kubeconfig["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in kubeconfig["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in kubeconfig["users"] if u["name"] == context["user"])

    def material(data_key: str, file_key: str, src: dict[str, Any], name: str) -> str | None:
        if src.get(data_key):
            path = tmp / name
            path.write_bytes(base64.b64decode(src[data_key]))
            path.chmod(0o600)
            return str(path)
        return src.get(file_key)

    ca = material("certificate-authority-data", "certificate-authority", cluster, "ca.crt")
    cert = material("client-certificate-data", "client-certificate", user, "client.crt")
    key = material("client-key-data", "client-key", user, "client.key")
    ctx = ssl.create_default_context(cafile=ca)
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return cluster["server"].rstrip("/"), ctx


class Kube:
    """One aiohttp session against the API server the kubeconfig names."""

    def __init__(self, kubeconfig: str, *, connections: int = 128) -> None:
        self.kubeconfig_path = kubeconfig
        self._tmp = tempfile.TemporaryDirectory(prefix="conveyor-bench-tls-")
        config = yaml.safe_load(Path(kubeconfig).read_text())
        self.server, self._ssl = _ssl_context(config, Path(self._tmp.name))
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kube:
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            read_bufsize=1 << 22,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        self._tmp.cleanup()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use `async with Kube(...)`"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        seconds: float = 60,
        ok: tuple[int, ...] = (),
    ) -> Any:
        """One call; returns the parsed JSON (or text). Raises ApiError on an
        unexpected status; statuses in `ok` return None."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as resp:
            text = await resp.text()
            if resp.status in ok:
                return None
            if resp.status >= 300:
                raise ApiError(resp.status, method, path, text)
            if resp.content_type == "application/json":
                return json.loads(text)
            return text

    async def create(self, path: str, obj: dict[str, Any], *, attempts: int = 20) -> bool:
        """POST with retries on throttling, server errors and broken connections;
        AlreadyExists (from a retried create) counts as created. Returns True when
        this call created the object."""
        return await self._post(path, obj, attempts) is not None

    async def create_object(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """create() that returns the stored object (read back only when a retried
        create found it already there)."""
        stored = await self._post(path, obj, 20)
        if stored is None:
            stored = await self.get(f"{path}/{obj['metadata']['name']}")
        return dict(stored)

    async def _post(self, path: str, obj: dict[str, Any], attempts: int) -> Any:
        delay = 0.1
        for attempt in range(attempts):
            try:
                return await self.request("POST", path, body=obj)
            except ApiError as e:
                if e.status == 409:
                    return None
                if e.status not in RETRY_STATUS or attempt == attempts - 1:
                    raise
            except (TimeoutError, aiohttp.ClientError):
                if attempt == attempts - 1:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return None

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def exists(self, path: str) -> bool:
        return await self.request("GET", path, ok=(404,)) is not None

    async def list(self, path: str, params: dict[str, str] | None = None) -> tuple[list[Any], str]:
        items: list[Any] = []
        query = dict(params or {}, limit="500")
        while True:
            page = await self.get(path, params=query)
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                return items, page["metadata"]["resourceVersion"]
            query["continue"] = cont

    async def metrics(self) -> str:
        text: str = await self.get("/metrics", seconds=30)
        return text

    async def watch(
        self,
        path: str,
        on_event: Callable[[str, dict[str, Any]], None],
        *,
        params: dict[str, str] | None = None,
        ready: asyncio.Event | None = None,
    ) -> None:
        """List then watch `path` forever (until cancelled), calling on_event(type, obj)
        for every object; listed objects arrive as ADDED. Relists on 410 Gone."""
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    items, rv = await self.list(path, params)
                    for item in items:
                        on_event("ADDED", item)
                    if ready is not None:
                        ready.set()
                query = dict(
                    params or {},
                    watch="1",
                    resourceVersion=rv,
                    allowWatchBookmarks="true",
                    timeoutSeconds="240",
                )
                async with self.session.get(
                    self.server + path,
                    params=query,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
                ) as resp:
                    if resp.status == 410:
                        rv = None
                        continue
                    if resp.status >= 300:
                        raise ApiError(resp.status, "WATCH", path, await resp.text())
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                rv = None
                            break
                        new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                        if new_rv:
                            rv = new_rv
                        if kind != "BOOKMARK":
                            on_event(kind, obj)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, aiohttp.ClientError, ApiError, ValueError):
                await asyncio.sleep(0.5)


# ---------------------------------------------------------------- metrics


def parse_request_totals(text: str) -> dict[tuple[str, str, str, str], float]:
    """apiserver_request_total summed over code, scope, component and version:
    {(group, resource, subresource, verb): count}."""
    totals: dict[tuple[str, str, str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_part, _, value = line.rpartition("} ")
        labels: dict[str, str] = {}
        for item in _split_labels(labels_part[len("apiserver_request_total{") :]):
            k, _, v = item.partition("=")
            labels[k] = v.strip('"')
        key = (
            labels.get("group", ""),
            labels.get("resource", ""),
            labels.get("subresource", ""),
            labels.get("verb", ""),
        )
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _split_labels(s: str) -> list[str]:
    out, cur, quoted, escaped = [], [], False, False
    for ch in s:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == "," and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"}


def write_diff(
    before: dict[tuple[str, str, str, str], float], after: dict[tuple[str, str, str, str], float]
) -> dict[tuple[str, str, str, str], float]:
    """The mutating requests between two scrapes."""
    out = {}
    for key, value in after.items():
        if key[3] not in WRITE_VERBS:
            continue
        delta = value - before.get(key, 0.0)
        if delta > 0:
            out[key] = delta
    return out


READ_VERBS = {"GET", "LIST", "WATCH"}


def read_diff(
    before: dict[tuple[str, str, str, str], float], after: dict[tuple[str, str, str, str], float]
) -> dict[tuple[str, str, str, str], float]:
    """The reading requests between two scrapes (a WATCH counts once, when it opens)."""
    out = {}
    for key, value in after.items():
        if key[3] not in READ_VERBS:
            continue
        delta = value - before.get(key, 0.0)
        if delta > 0:
            out[key] = delta
    return out


def resource_label(key: tuple[str, str, str, str]) -> str:
    group, resource, sub, verb = key
    name = f"{resource}/{sub}" if sub else resource
    if group:
        name = f"{name}.{group}"
    return f"{verb} {name}"


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]
