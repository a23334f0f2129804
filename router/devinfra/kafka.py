"""A single-node KRaft Kafka broker run from Maven Central jars (tests, `dev up`)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from router.devinfra.process import DetachedServer, InfraError, port_accepts
from router.devinfra.tls import TlsFiles
from router.devinfra.topics import broker_ready, run_coro

DEFAULT_VERSION = "4.1.1"
_JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
_LOG4J2 = """\
status = warn
# Kafka logs while shutting down; log4j's own hook would stop logging first.
shutdownHook = disable
appender.console.type = Console
appender.console.name = STDOUT
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Per-request and state-change chatter drowns the lines that explain a failed start.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def cache_root(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return cache_dir
    env = os.environ.get("LEADROUTER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "leadrouter"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise InfraError(
            f"{tool} not found on PATH: the Kafka broker needs Java 17+ and Maven"
            " (apt-get install -y openjdk-17-jre-headless maven)"
        )
    return path


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return _require("java")


def ensure_kafka_jars(version: str = DEFAULT_VERSION, cache_dir: Path | None = None) -> Path:
    """Return `<cache>/kafka-<version>/libs`, fetching the jars with Maven if needed.

    Jars land in a temporary folder that is renamed into place, so an interrupted
    fetch never leaves a cache that looks complete.
    """
    base = cache_root(cache_dir) / f"kafka-{version}"
    libs = base / "libs"
    if (libs / f"kafka_2.13-{version}.jar").is_file():
        return libs
    mvn = _require("mvn")
    java_executable()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="libs.fetch-", dir=base))
    try:
        pom = repo_root() / "deploy" / "kafka" / "pom.xml"
        cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom)]
        cmd += [f"-Dkafka.version={version}", "dependency:copy-dependencies"]
        cmd += [f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
        try:
            out = subprocess.run(  # noqa: S603 - argv list built here, no shell
                cmd, capture_output=True, text=True, timeout=900, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"fetching Kafka {version} jars timed out: {' '.join(cmd)}") from exc
        if out.returncode != 0 or not (tmp / f"kafka_2.13-{version}.jar").is_file():
            log = "\n".join((out.stdout + out.stderr).splitlines()[-40:])
            raise InfraError(f"fetching Kafka {version} jars failed ({' '.join(cmd)}):\n{log}")
        if libs.exists():
            # A concurrent fetch may have won; otherwise these are incomplete leftovers.
            if (libs / f"kafka_2.13-{version}.jar").is_file():
                return libs
            shutil.rmtree(libs)
        tmp.chmod(0o755)  # mkdtemp made it private; the cache is shared
        tmp.rename(libs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return libs


def new_cluster_id() -> str:
    """A Kafka cluster id (url-safe base64 of 16 random bytes), without a JVM start."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's Uuid.randomUuid() avoids a leading '-' too: CLIs read it as an option.
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class SaslListener:
    """An extra SASL_PLAINTEXT listener for `users` (name -> password).

    SCRAM mechanisms get their credentials at format time (`--add-scram`), PLAIN from
    the listener's JAAS config. The PLAINTEXT listener stays (readiness probes and
    topic set-up use it), as do the controller and inter-broker ones: only clients on
    `port` must authenticate. Passwords land on the StorageTool command line and in
    server.properties, so this is for test brokers only.
    """

    port: int
    users: Mapping[str, str] = field(default_factory=dict)
    # Every user can authenticate with each mechanism listed.
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-512",)


@dataclass(frozen=True)
class TlsListener:
    """An extra TLS listener: `SSL`, or `SASL_SSL` for the broker's SaslListener users
    and mechanisms (so a broker with one needs a SaslListener too).

    The broker presents `files.certfile` and `files.keyfile` (a PEM key store, Kafka
    2.7+) and trusts client certificates signed by `files.cafile`; `client_auth`
    "required" is mutual TLS, refusing clients without one.
    """

    port: int
    files: TlsFiles
    protocol: Literal["SSL", "SASL_SSL"] = "SSL"
    client_auth: Literal["required", "requested", "none"] = "required"


class KafkaBroker(DetachedServer):
    """Combined broker+controller KRaft node; data, config and log live in `workdir`."""

    name = "kafka"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        controller_port: int,
        host: str = "127.0.0.1",
        version: str = DEFAULT_VERSION,
        libs_dir: Path | None = None,
        owner_pid: int | None = None,
        sasl: SaslListener | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        super().__init__(workdir, host, port, owner_pid)
        if tls is not None and tls.protocol == "SASL_SSL" and sasl is None:
            raise ValueError("a SASL_SSL listener takes its users and mechanisms from a SaslListener")
        self.controller_port = controller_port
        self.sasl = sasl
        self.tls = tls
        self.keystore_path = self.workdir / "tls-keystore.pem"
        self.version = version
        self.libs_dir = libs_dir
        self.config_path = self.workdir / "server.properties"
        self.log4j_path = self.workdir / "log4j2.properties"
        self.data_dir = self.workdir / "data"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 90) -> None:
        super().start(timeout)

    def _markers(self) -> list[str]:
        return ["kafka.Kafka", str(self.config_path)]

    def _ready(self) -> bool:
        if not port_accepts(self.port, self.host):
            return False
        return run_coro(lambda: broker_ready(self.bootstrap_servers, probe_seconds=5))

    def _java(self, main_class: str, *args: str) -> list[str]:
        libs = self.libs_dir or ensure_kafka_jars(self.version)
        props = [
            f"-Dkafka.logs.dir={self.workdir}",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
        ]
        classpath = ["-cp", f"{libs}/*"]
        return [java_executable(), *_JVM_OPTS, *props, *classpath, main_class, *args]

    def _prepare(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_keystore()
        self.log4j_path.write_text(_LOG4J2)
        self.config_path.write_text(self._server_properties())
        if not (self.data_dir / "meta.properties").is_file():
            self._format()
        return self._java("kafka.Kafka", str(self.config_path))

    def _format(self) -> None:
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.config_path),
            *self._sasl_format_args(),
        )
        try:
            out = subprocess.run(  # noqa: S603 - argv list built here, no shell
                cmd, capture_output=True, text=True, timeout=120, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"formatting Kafka storage in {self.data_dir} timed out") from exc
        if out.returncode != 0:
            log = "\n".join((out.stdout + out.stderr).splitlines()[-40:])
            raise InfraError(f"formatting Kafka storage in {self.data_dir} failed:\n{log}")

    def _sasl_format_args(self) -> list[str]:
        if self.sasl is None:
            return []
        args: list[str] = []
        for mech in self.sasl.mechanisms:
            if mech.startswith("SCRAM-"):
                for name, password in self.sasl.users.items():
                    args += ["--add-scram", f"{mech}=[name={name},password={password}]"]
        return args

    def _sasl_properties(self) -> dict[str, str]:
        if self.sasl is None:
            return {}
        props = {"sasl.enabled.mechanisms": ",".join(self.sasl.mechanisms)}
        listeners = ["sasl_plaintext"]
        if self.tls is not None and self.tls.protocol == "SASL_SSL":
            listeners.append("sasl_ssl")
        for mech in self.sasl.mechanisms:
            if mech == "PLAIN":
                users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl.users.items())
                login = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            else:
                login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            for listener in listeners:
                props[f"listener.name.{listener}.{mech.lower()}.sasl.jaas.config"] = login
        return props

    def _write_keystore(self) -> None:
        """Kafka's PEM key store is one file: the private key, then the certificate."""
        if self.tls is None:
            return
        files = self.tls.files
        self.keystore_path.write_text(files.keyfile.read_text() + files.certfile.read_text())
        self.keystore_path.chmod(0o600)

    def _tls_properties(self) -> dict[str, str]:
        if self.tls is None:
            return {}
        prefix = f"listener.name.{self.tls.protocol.lower()}."
        return {
            prefix + "ssl.keystore.type": "PEM",
            prefix + "ssl.keystore.location": str(self.keystore_path),
            prefix + "ssl.truststore.type": "PEM",
            prefix + "ssl.truststore.location": str(self.tls.files.cafile),
            prefix + "ssl.client.auth": self.tls.client_auth,
        }

    def _server_properties(self) -> str:
        h, p, c = self.host, self.port, self.controller_port
        listeners = f"PLAINTEXT://{h}:{p}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.sasl is not None:
            listeners += f",SASL_PLAINTEXT://{h}:{self.sasl.port}"
            protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        if self.tls is not None:
            listeners += f",{self.tls.protocol}://{h}:{self.tls.port}"
            protocols += f",{self.tls.protocol}:{self.tls.protocol}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{h}:{c}",
            "listeners": f"{listeners},CONTROLLER://{h}:{c}",
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self.data_dir),
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "log.retention.hours": "168",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Consumers in tests join at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            **self._sasl_properties(),
            **self._tls_properties(),
        }
        return "".join(f"{key}={value}\n" for key, value in props.items())
