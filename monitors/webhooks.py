"""Delivers the webhook outbox: claim a team's due alerts, POST them in order,
remove each once the receiver answered 2xx, back off on failure.

Teams are delivered side by side, so one team's broken endpoint delays nobody
else's alerts. Any number of monitors may deliver: claims are atomic and leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import aiohttp
from pydantic import ValidationError

from monitors.metrics import Metrics
from monitors.notifier import OTHER_TEAM
from monitors.webhook_outbox import Claimed, WebhookOutbox
from router.consume import TRANSIENT
from router.logs import log
from router.rulebook_source import Rules
from router.settings import WebhookEndpoint, WebhookSettings
from rules.notify import ALERT, AlertEvent, alert_payload, digest_payload

logger = logging.getLogger("leadrouter.webhooks")

# Items claimed per team per round, and breaches a digest names in full.
CLAIM_LIMIT = 50
DIGEST_SAMPLE = 20
DEPTH_REFRESH_SECONDS = 2.0


class DeliveryFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class WebhookDeliverer:
    def __init__(
        self, settings: WebhookSettings, outbox: WebhookOutbox, metrics: Metrics, rules: Callable[[], Rules]
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._metrics = metrics
        self._rules = rules
        self._session: aiohttp.ClientSession | None = None
        self._depth_at = 0.0
        self.last_round = time.monotonic()
        self.healthy = True

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
            self._session = session
            delay = self._settings.poll_interval_seconds
            while not stop.is_set():
                try:
                    await self.deliver_once()
                    self.healthy = True
                    delay = self._settings.poll_interval_seconds
                except TRANSIENT as exc:
                    self.healthy = False
                    self._metrics.retries.labels("webhooks").inc()
                    log(logger, "webhooks.retry", logging.WARNING, error=repr(exc), backoff=delay)
                    delay = min(max(delay * 2, 0.1), 5.0)
                self.last_round = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def deliver_once(self) -> None:
        teams = await self._outbox.teams()
        await asyncio.gather(*(self._deliver_team(team) for team in teams))
        if time.monotonic() - self._depth_at >= DEPTH_REFRESH_SECONDS:
            self._depth_at = time.monotonic()
            for team in teams:
                self._metrics.webhook_outbox_depth.labels(self._label(team)).set(
                    await self._outbox.depth(team)
                )

    async def _deliver_team(self, team: str) -> None:
        now_ms = int(time.time() * 1000)
        lease_ms = int(self._settings.lease_seconds * 1000)
        claimed = await self._outbox.claim(team, now_ms, lease_ms, CLAIM_LIMIT, DIGEST_SAMPLE)
        endpoint = self._settings.endpoint(team)
        for i, item in enumerate(claimed):
            if endpoint is None:
                # The endpoint was removed from the settings: nobody to tell. Say so.
                log(logger, "webhook.unconfigured", logging.WARNING, team=team, item=item.id)
                await self._outbox.done(team, [item.id])
                continue
            try:
                await self._post(endpoint, team, item)
            except DeliveryFailed as exc:
                rest = [c.id for c in claimed[i:]]
                failures, delay = await self._outbox.retry(
                    team, rest, int(time.time() * 1000), int(self._settings.backoff_initial_seconds * 1000),
                    int(self._settings.backoff_max_seconds * 1000), random.random(),  # noqa: S311 - jitter
                )  # fmt: skip
                self._metrics.webhook_failures.labels(self._label(team), exc.reason).inc()
                log(logger, "webhook.failed", logging.WARNING, team=team, item=item.id, reason=exc.reason,
                    detail=str(exc), failures=failures, retry_in=delay / 1000)  # fmt: skip
                return
            await self._outbox.done(team, [item.id])
            kind = "digest" if item.is_digest else "alert"
            self._metrics.webhook_deliveries.labels(self._label(team), kind).inc()
            log(
                logger,
                "webhook.delivered",
                team=team,
                item=item.id,
                kind=kind,
                alerts=len(item.digest_ids) or 1,
            )

    async def _post(self, endpoint: WebhookEndpoint, team: str, item: Claimed) -> None:
        assert self._session is not None
        events = [_alert(p) for p in item.payloads]
        known = [e for e in events if e is not None]
        if item.is_digest:
            window = self._settings.burst_window_seconds
            body = digest_payload(endpoint.format, team, item.digest_ids, known, window)
            alert_id = f"{team}/{item.id}"  # a digest's id is unique within its team
        elif known:
            body = alert_payload(endpoint.format, team, known[0])
            alert_id = known[0].alert_id
        else:
            # Unreadable (written by another version?): deliver what we can say.
            body = {"text": f"leadrouter alert {item.id} for team {team} could not be read"}
            alert_id = item.id
        headers = {"X-Leadrouter-Alert-Id": alert_id}
        if endpoint.bearer_token is not None:
            headers["Authorization"] = f"Bearer {endpoint.bearer_token.get_secret_value()}"
        url = endpoint.url.get_secret_value()
        try:
            async with self._session.post(url, json=body, headers=headers) as response:
                if response.status >= 300:
                    reason = "http_4xx" if response.status < 500 else "http_5xx"
                    raise DeliveryFailed(reason, f"HTTP {response.status}")
        except TimeoutError:
            raise DeliveryFailed("timeout", f"no answer within {self._settings.timeout_seconds} s") from None
        except aiohttp.ClientError as exc:
            raise DeliveryFailed("connection", type(exc).__name__) from None

    def _label(self, team: str) -> str:
        return team if any(t.id == team for t in self._rules().book.teams) else OTHER_TEAM


def _alert(raw: bytes) -> AlertEvent | None:
    try:
        return ALERT.validate_json(raw)
    except ValidationError:
        return None
