"""`leadrouter`: worker, dev infrastructure, demo traffic, rulebook checks, schemas."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from router.settings import Settings

DEFAULT_DEV_DIR = Path(".leadrouter-dev")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadrouter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run the router and/or monitor agents")
    worker.add_argument("--role", choices=["router", "monitor", "all"], default="all")
    worker.add_argument("--http-port", type=int, help="metrics/health port (0 = any free port)")
    worker.add_argument("--create-topics", action="store_true", help="create missing topics first")

    dev = sub.add_parser("dev", help="local Kafka broker and redis-server for development")
    dev.add_argument("action", choices=["up", "down", "status"])
    dev.add_argument("--dir", type=Path, default=DEFAULT_DEV_DIR, help="state folder it owns")
    dev.add_argument("--kafka-port", type=int, default=9092)
    dev.add_argument("--kafka-controller-port", type=int, default=9093)
    dev.add_argument("--redis-port", type=int, default=6379)

    demo = sub.add_parser("demo", help="publish synthetic leads and activities, print what happens")
    demo.add_argument("--rate", type=float, default=2.0, help="leads per second")
    demo.add_argument("--duration", type=float, default=0, help="seconds to run (0 = until Ctrl-C)")
    demo.add_argument("--sla-seconds", type=float, default=20.0, help="first-touch SLA for --workers")
    demo.add_argument("--workers", action="store_true", help="also run a router and a monitor process")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--router-port", type=int, default=9464, help="router metrics port (--workers)")
    demo.add_argument("--monitor-port", type=int, default=9465, help="monitor metrics port (--workers)")
    demo.add_argument("--log-dir", type=Path, default=DEFAULT_DEV_DIR / "logs", help="worker logs")

    rules = sub.add_parser("rules", help="rulebook tools")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a rulebook file")
    check.add_argument("file", type=Path)

    schemas = sub.add_parser("schemas", help="write (or --check) docs/schemas/*.json from the models")
    schemas.add_argument("--dir", type=Path, default=Path("docs/schemas"))
    schemas.add_argument("--check", action="store_true")
    return parser


def _run_until_signal(coro_factory: object) -> int:
    """Run an async main with SIGINT/SIGTERM setting a stop event."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        result: int = await coro_factory(stop)  # type: ignore[operator]
        return result

    return asyncio.run(runner())


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from router.devinfra.topics import ensure_topics
    from router.worker import run_worker

    if args.http_port is not None:
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"port": args.http_port})}
        )

    async def main(stop: asyncio.Event) -> int:
        if args.create_topics:
            await ensure_topics(settings.kafka.bootstrap_servers, settings.topics.all_topics())
        await run_worker(settings, args.role, stop)
        return 0

    return _run_until_signal(main)


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from router.devinfra.dev import dev_down, dev_status, dev_up
    from router.devinfra.process import InfraError

    try:
        if args.action == "up":
            status = dev_up(
                args.dir,
                args.kafka_port,
                args.kafka_controller_port,
                args.redis_port,
                settings.topics.all_topics(),
            )
        elif args.action == "down":
            for line in dev_down(args.dir):
                print(line)
            return 0
        else:
            status = dev_status(args.dir)
    except InfraError as exc:
        print(f"leadrouter dev {args.action}: {exc}", file=sys.stderr)
        return 1
    for line in status.lines():
        print(line)
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules.rulebook import RulebookError, parse_rulebook

    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        book = parse_rulebook(text, str(args.file))
    except RulebookError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{args.file}: ok (version {book.version}: {len(book.reps)} reps, "
        f"{len(book.teams)} teams, {len(book.routes)} routes)"
    )
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from router.schemas import check_schemas, write_schemas

    if args.check:
        drift = check_schemas(args.dir)
        for line in drift:
            print(line, file=sys.stderr)
        return 1 if drift else 0
    for path in write_schemas(args.dir):
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from router.demo import DemoOptions, run_demo

    options = DemoOptions(
        args.rate, args.duration, args.sla_seconds, args.workers, args.seed,
        args.router_port, args.monitor_port, args.log_dir,
    )  # fmt: skip
    return _run_until_signal(lambda stop: run_demo(settings, options, stop))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "rules":
        return cmd_rules_check(args)
    if args.command == "schemas":
        return cmd_schemas(args)
    settings = Settings()
    from router.logs import configure_logging

    configure_logging(settings.log)
    if args.command == "worker":
        return cmd_worker(args, settings)
    if args.command == "dev":
        return cmd_dev(args, settings)
    return cmd_demo(args, settings)


if __name__ == "__main__":
    sys.exit(main())
