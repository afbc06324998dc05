"""Requests to the API server made on the event loop, as the official client would make them.

The operator's writes (a pod create, a status patch, an event) are most of
what it does per job, and each one through the official client is a hop to a
worker thread and back: two thread wake-ups and the GIL handed over twice,
0.5-1 ms on a busy 2-core node, for a request the API server answers in 3.
`LoopHttp` sends them from the loop instead (aiohttp, which kopf brings),
with what the client's configuration says: its host, its TLS (CA, client
certificate, hostname checks), its proxy, and its credentials, asked of the
client per request so that a token it refreshes is the one sent.

It answers with the status, the body and the headers; the caller turns a
refusal into `kube_errors` as it does the client's. The informers' lists and
watches and the log reads stay on the client (streams and plain text, off
the hot path).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import kubernetes
import yarl

TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
"""A write that hangs is failed, and retried with the work queue's backoff."""

IDLE_SECONDS = 60.0
"""How long an idle connection is kept for the next write. aiohttp's default (15 s) made
every write of a quiet operator (a job a minute) open a new TLS connection first, 5-7 ms
of the apply -> pod latency; the API server closes idle ones after 90 s, so this stays
below that."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str]


class UnsupportedProxyError(ValueError):
    """The kubeconfig names a proxy aiohttp cannot use (SOCKS)."""


class LoopHttp:
    """No cap on connections: a write leaves as soon as the leader's fence let it (see
    `leadership`), never after a wait for a free one; the reconcilers' parallelism bounds
    how many are open."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self._client = client
        self._session: aiohttp.ClientSession | None = None
        configuration = client.configuration
        self._ssl = _ssl_context(configuration)
        self._server_hostname = configuration.tls_server_name or (
            configuration.assert_hostname
            if isinstance(configuration.assert_hostname, str)
            else None
        )
        self._proxy, self._proxy_headers = _proxy(configuration)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str,
    ) -> Answer:
        client = self._client
        headers = {**client.default_headers, "Accept": "application/json"}
        if body is not None or method != "GET":
            headers["Content-Type"] = content_type
        client.update_params_for_auth(headers, [], ["BearerToken"], path, method, None)
        url = yarl.URL(client.configuration.host + path, encoded=True)  # quoted by the caller
        async with self._open().request(
            method,
            url.with_query(query) if query else url,
            data=body,
            headers=headers,
            ssl=self._ssl,
            server_hostname=self._server_hostname,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
        ) as response:
            data = await response.read()
            return Answer(response.status, response.reason or "", data, dict(response.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use (it belongs to the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_SECONDS),
                timeout=TIMEOUT,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
            )
        return self._session


def _ssl_context(configuration: kubernetes.client.Configuration) -> ssl.SSLContext | bool:
    if not configuration.host.startswith("https:"):
        return True  # plain HTTP: aiohttp's default, which is unused
    if configuration.verify_ssl:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.assert_hostname is False:
            context.check_hostname = False
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


def _proxy(
    configuration: kubernetes.client.Configuration,
) -> tuple[str | None, Mapping[str, str] | None]:
    proxy = configuration.proxy
    if not proxy or kubernetes.client.rest.should_bypass_proxies(
        configuration.host, configuration.no_proxy or ""
    ):
        return None, None
    if kubernetes.client.rest.is_socks_proxy_url(proxy):  # type: ignore[no-untyped-call]
        raise UnsupportedProxyError(f"the API server's proxy {proxy} is SOCKS: use an HTTP proxy")
    return proxy, configuration.proxy_headers
