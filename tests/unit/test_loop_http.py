"""The operator's requests from the event loop honor the client's configuration: its proxy
(and the hosts that bypass it), and a request that gets no answer is counted as such."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import kubernetes
import pytest
from aiohttp import web

from conveyor.runtime import kube, loop_http
from tests.unit.test_metrics import local_server, sample


@asynccontextmanager
async def server(seen: list[bytes] | None = None) -> AsyncIterator[str]:
    """A local API server that answers every request alike (and keeps the bodies); its URL."""

    async def answer(request: web.Request) -> web.Response:
        if seen is not None:
            seen.append(await request.read())
        return web.json_response({"metadata": {"resourceVersion": "3"}})

    async with local_server(answer) as host:
        yield host


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def configuration(
    host: str, *, proxy: str | None = None, no_proxy: str | None = None
) -> kubernetes.client.Configuration:
    config = kubernetes.client.Configuration()
    config.host = host
    config.proxy = proxy
    config.no_proxy = no_proxy
    return config


def test_a_host_the_proxy_is_bypassed_for_is_asked_directly() -> None:
    dead_proxy = f"http://127.0.0.1:{unused_port()}"

    async def scenario() -> None:
        async with server() as host:
            direct = kube.ClientKubeApi(
                threads=2, configuration=configuration(host, proxy=dead_proxy, no_proxy="127.0.0.1")
            )
            assert await direct.create_job("ns", {"kind": "BackgroundJob"}) == {
                "metadata": {"resourceVersion": "3"}
            }
            await direct.close()
            proxied = kube.ClientKubeApi(
                threads=2, configuration=configuration(host, proxy=dead_proxy)
            )
            with pytest.raises((aiohttp.ClientError, OSError)):
                await proxied.create_job("ns", {"kind": "BackgroundJob"})
            await proxied.close()

    labels = {"verb": "create", "resource": "backgroundjobs", "code": "none"}
    before = sample("conveyor_api_request_errors_total", **labels)
    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert sample("conveyor_api_request_errors_total", **labels) == before + 1


def test_a_socks_proxy_is_refused_by_name() -> None:
    """(The official client itself needs PySocks for one; this needs aiohttp-socks.)"""
    client = kubernetes.client.ApiClient(configuration("https://10.0.0.1"))
    client.configuration.proxy = "socks5://proxy.example:1080"
    with pytest.raises(loop_http.UnsupportedProxyError, match=r"socks5://proxy\.example:1080"):
        loop_http.LoopHttp(client)


def test_a_body_orjson_cannot_write_is_sent_all_the_same() -> None:
    """An integer past 64 bits (a template's, say) is the API server's to judge."""
    seen: list[bytes] = []

    async def scenario() -> None:
        async with server(seen) as host:
            api = kube.ClientKubeApi(threads=2, configuration=configuration(host))
            await api.create_pod("ns", {"kind": "Pod", "spec": {"priority": 2**70}})
            await api.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert seen == [b'{"kind": "Pod", "spec": {"priority": 1180591620717411303424}}']


def test_an_idle_connection_is_kept_for_the_next_write_within_the_servers_idle_limit() -> None:
    """The API server (k8s.io/apiserver's secure serving) closes a connection idle for 90 s."""

    async def scenario() -> float:
        session = loop_http.LoopHttp(kubernetes.client.ApiClient(configuration("http://x")))._open()
        try:
            connector = session.connector
            assert isinstance(connector, aiohttp.TCPConnector)
            return float(connector._keepalive_timeout)  # aiohttp has no getter
        finally:
            await session.close()

    idle = asyncio.run(scenario())
    assert idle == loop_http.IDLE_SECONDS
    assert 15 < idle < 90
