"""One settings object for every process, from `LEADROUTER_*` environment variables.

Nested fields use `__`: `LEADROUTER_KAFKA__BOOTSTRAP_SERVERS=host:9092`,
`LEADROUTER_SLA__FIRST_TOUCH_SECONDS=300`. Built once in `main()` and passed down;
nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RULEBOOK = Path(__file__).resolve().parent.parent / "rules" / "examples" / "default.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "leadrouter"
    group_prefix: str = "leadrouter"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS (security_protocol SSL or SASL_SSL): the CA bundle to trust, and a client
    # certificate and key for mutual TLS. Paths, so secrets stay in mounted files.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # The passphrase of an encrypted ssl_keyfile.
    ssl_password: SecretStr | None = None
    # The broker's certificate must name the host we dialled (Kafka's own clients
    # default to this too: ssl.endpoint.identification.algorithm=https).
    ssl_check_hostname: bool = True
    # Records per poll: large enough to batch Redis work, small enough that one
    # poll never holds a partition for long.
    max_poll_records: Annotated[int, Field(ge=1, le=10_000)] = 500
    poll_timeout_seconds: Annotated[float, Field(gt=0, le=5)] = 0.1

    # Field validators rather than one model validator: an error then shows the
    # field's own value, never another field's (a Redis URL may hold a password).
    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _tls_needs_a_tls_protocol(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        # With a plaintext protocol the files would be ignored: say so instead.
        if path is not None and info.data.get("security_protocol") not in ("SSL", "SASL_SSL"):
            raise ValueError("needs security_protocol SSL or SASL_SSL")
        return path

    @field_validator("ssl_keyfile")
    @classmethod
    def _goes_with_a_cert(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _needs_cert(path, info)


def _needs_cert(keyfile: Path | None, info: ValidationInfo) -> Path | None:
    """A client key without the certificate it goes with is a mistake. (Not checked for
    ssl_password: a validation error would print the passphrase.)"""
    if keyfile is not None and info.data.get("ssl_certfile") is None:
        raise ValueError("needs ssl_certfile (the client certificate it goes with)")
    return keyfile


class TopicSettings(_Section):
    # A prefix isolates environments (and tests) that share one broker.
    prefix: str = ""
    leads: str = "leads"
    activities: str = "activities"
    reps: str = "reps"
    assignments: str = "assignments"
    sla_events: str = "sla-events"
    routing_decisions: str = "routing-decisions"
    dlq_suffix: str = ".dlq"
    partitions: Annotated[int, Field(ge=1, le=1000)] = 6

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def dlq(self, topic: str) -> str:
        return f"{topic}{self.dlq_suffix}"

    def all_topics(self) -> dict[str, int]:
        """Every topic the workers use, with its partition count."""
        names = [
            self.leads,
            self.activities,
            self.reps,
            self.assignments,
            self.sla_events,
            self.routing_decisions,
        ]
        out = {self.name(n): self.partitions for n in names}
        for n in (self.leads, self.activities, self.reps, self.assignments, self.sla_events):
            out[self.dlq(self.name(n))] = 1
        return out


class RedisSettings(_Section):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # Every key starts with this, so environments and tests can share a server.
    prefix: str = "lr"
    # Lead records outlive any SLA by far; they expire so Redis does not grow forever.
    retention_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    socket_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    # TLS (a rediss:// URL): the CA bundle to trust (default: the system's CAs), and
    # a client certificate and key for servers that ask for one (redis-server's
    # default with TLS on: tls-auth-clients yes). Paths to mounted files.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # The passphrase of an encrypted ssl_keyfile.
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _tls_needs_rediss(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        url = info.data.get("url")
        if path is not None and not (isinstance(url, SecretStr) and _is_rediss(url)):
            raise ValueError("needs a rediss:// URL")
        return path

    @field_validator("ssl_keyfile")
    @classmethod
    def _goes_with_a_cert(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _needs_cert(path, info)

    @property
    def tls(self) -> bool:
        return _is_rediss(self.url)


def _is_rediss(url: SecretStr) -> bool:
    return url.get_secret_value().lower().startswith("rediss://")


class SlaSettings(_Section):
    first_touch_seconds: Annotated[float, Field(gt=0)] = 300.0
    sweep_interval_seconds: Annotated[float, Field(gt=0, le=10)] = 0.05
    # A breach waits this long past the deadline and for the activity stream's
    # watermark, so consumer lag never turns a touch into a false breach.
    grace_seconds: Annotated[float, Field(ge=0, le=60)] = 0.25
    # A monitor renews its claims while it publishes; a killed one's alerts go out
    # from another monitor this long after it died.
    claim_lease_seconds: Annotated[float, Field(gt=0)] = 0.5
    # A monitor whose heartbeat in Redis is older than this is presumed gone: the
    # other monitors apply its partitions' waiting records themselves, so breaches
    # do not wait for Kafka's session timeout or a rebalance. Beats at a third of it.
    owner_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 0.3
    claim_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    # A rep who misses this many first-touch SLAs in a row is set `away` (a
    # rep.status event on the reps topic) until they set themselves available. 0: off.
    auto_away_after_misses: Annotated[int, Field(ge=0, le=1000)] = 0


AlertType = Literal["sla.warning", "sla.breached", "sla.escalated"]


class WebhookEndpoint(_Section):
    # The URL is a secret: a Slack incoming-webhook URL is its own credential.
    url: SecretStr
    format: Literal["slack", "json"] = "json"
    kinds: tuple[AlertType, ...] = ("sla.breached", "sla.escalated")
    # Sent as `Authorization: Bearer ...` when set.
    bearer_token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        if not url.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return url


class WebhookSettings(_Section):
    # Team id -> endpoint; "*" serves every team without one of its own. Set as JSON:
    # LEADROUTER_WEBHOOKS__ENDPOINTS='{"emea": {"url": "https://hooks.slack.com/...", "format": "slack"}}'
    endpoints: dict[str, WebhookEndpoint] = {}
    # More breaches than this for a team within the window: the rest of the window's
    # breaches go out as one digest when it closes.
    burst_threshold: Annotated[int, Field(ge=1)] = 5
    burst_window_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Failed deliveries are retried for as long as it takes, backing off from the
    # first delay, doubling, up to the cap; alerts wait in Redis meanwhile.
    backoff_initial_seconds: Annotated[float, Field(gt=0)] = 1.0
    backoff_max_seconds: Annotated[float, Field(gt=0)] = 300.0
    # A claimed delivery not confirmed within this is tried again (by any monitor).
    lease_seconds: Annotated[float, Field(gt=0)] = 30.0
    poll_interval_seconds: Annotated[float, Field(gt=0, le=10)] = 0.25

    def endpoint(self, team: str) -> WebhookEndpoint | None:
        return self.endpoints.get(team) or self.endpoints.get("*")


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    # 0 picks a free port (logged at start); the worker CLI sets one per role.
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    # When set, /metrics and /readyz need `Authorization: Bearer <token>`; /healthz
    # (the liveness probe) stays open.
    bearer_token: SecretStr | None = None


class MetricsSettings(_Section):
    # Per-rep series are off by default: sales-ops may want them, but a rep id is
    # personal data in some places and multiplies series by the roster size.
    per_rep: bool = False


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADROUTER_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    sla: SlaSettings = SlaSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    webhooks: WebhookSettings = WebhookSettings()
    rulebook: Path = DEFAULT_RULEBOOK
