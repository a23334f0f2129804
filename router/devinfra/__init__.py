"""Local Kafka and Redis servers for tests and `leadrouter dev`, started without Docker.

Only tests and the `dev` commands use this package; the routing path never imports it.
"""

from router.devinfra.dev import DevStatus, dev_down, dev_status, dev_up
from router.devinfra.kafka import KafkaBroker, SaslListener, TlsListener, ensure_kafka_jars
from router.devinfra.process import InfraError, PortInUseError, free_port, free_ports
from router.devinfra.redis_server import RedisServer
from router.devinfra.tls import LocalPki, TlsFiles, make_pki
from router.devinfra.topics import ensure_topics

__all__ = [
    "DevStatus",
    "InfraError",
    "KafkaBroker",
    "LocalPki",
    "PortInUseError",
    "RedisServer",
    "SaslListener",
    "TlsFiles",
    "TlsListener",
    "dev_down",
    "dev_status",
    "dev_up",
    "ensure_kafka_jars",
    "ensure_topics",
    "free_port",
    "free_ports",
    "make_pki",
]
