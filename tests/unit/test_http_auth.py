"""The worker's HTTP surface: open by default, behind a bearer token when one is set,
except /healthz, which liveness probes call without credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from monitors.http import make_app
from router.settings import HttpSettings, Settings

TOKEN = "t0ken-for-tests"


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("leadrouter_test_total", "a sample", registry=reg).inc()
    return reg


def ready() -> tuple[bool, dict[str, str]]:
    return True, {"redis": "ok"}


@pytest_asyncio.fixture
async def protected() -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(make_app(registry(), ready, TOKEN))) as client:
        yield client


async def test_without_a_token_everything_is_open() -> None:
    """The default (no token): /metrics, /readyz and /healthz answer anyone."""
    async with TestClient(TestServer(make_app(registry(), ready))) as client:
        for path in ("/metrics", "/readyz", "/healthz"):
            assert (await client.get(path)).status == 200


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/nowhere"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN])
async def test_protected_paths_refuse_a_missing_or_wrong_token(
    protected: TestClient[object, object], path: str, header: str | None
) -> None:
    """With a token set, a request without `Authorization: Bearer <token>` gets 401
    and a WWW-Authenticate challenge, and no metric or check leaks into the body."""
    response = await protected.get(path, headers={"Authorization": header} if header else {})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.text()
    assert "leadrouter_test_total" not in body
    assert "redis" not in body


async def test_protected_paths_answer_the_right_token(protected: TestClient[object, object]) -> None:
    """The right bearer token opens /metrics and /readyz."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    metrics = await protected.get("/metrics", headers=auth)
    assert metrics.status == 200
    assert "leadrouter_test_total 1.0" in await metrics.text()
    assert (await protected.get("/readyz", headers=auth)).status == 200


async def test_healthz_stays_open_for_liveness_probes(protected: TestClient[object, object]) -> None:
    """/healthz needs no token, so a liveness probe keeps working."""
    assert (await protected.get("/healthz")).status == 200


def test_the_token_is_a_secret_and_the_host_is_loopback_by_default() -> None:
    """The token never shows in a settings repr; the default bind address is loopback."""
    settings = Settings(http=HttpSettings(bearer_token=TOKEN))  # type: ignore[arg-type]
    assert TOKEN not in repr(settings) + str(settings)
    assert HttpSettings().host == "127.0.0.1"
