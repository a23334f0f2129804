"""`leadrouter`: worker, dev infrastructure, demo traffic, rulebook checks, simulation,
decision explanations, schemas."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from router.settings import RedisSettings, Settings

if TYPE_CHECKING:
    from rules.events import Lead
    from rules.rulebook import Rulebook

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
    dev.add_argument("--kafka-controller-port", type=int, default=19093, help="(9093 is Alertmanager's)")
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
    check = rules_sub.add_parser("check", help="validate a rulebook file and warn about likely mistakes")
    check.add_argument("file", type=Path)
    check.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")

    simulate = sub.add_parser(
        "simulate", help="route leads offline with a rulebook and print the distribution (no Kafka, no Redis)"
    )
    simulate.add_argument("--rulebook", type=Path, help="default: LEADROUTER_RULEBOOK or the shipped one")
    simulate.add_argument("--leads", type=Path, help=".jsonl (lead events or leads) or .csv file")
    simulate.add_argument("--generate", type=int, metavar="N", help="synthesise N leads instead of --leads")
    simulate.add_argument("--seed", type=int, default=1, help="seed of --generate (default 1)")
    simulate.add_argument(
        "--compare", type=Path, metavar="OTHER", help="also run OTHER and count owner changes"
    )
    simulate.add_argument(
        "--touch-after", type=float, metavar="SECONDS", help="each assigned lead is touched this long after"
    )
    simulate.add_argument(
        "--start", type=_instant, help="time of the first generated or undated lead (ISO 8601 with offset)"
    )

    explain = sub.add_parser(
        "explain", help="explain a routing decision: a routed lead's, or a hypothetical one"
    )
    explain.add_argument("lead_id", nargs="?", help="a lead the router decided (read from Redis)")
    explain.add_argument(
        "--lead", type=Path, help="a lead (event or bare lead JSON) to decide hypothetically"
    )
    explain.add_argument("--rulebook", type=Path, help="rulebook for --lead (default: LEADROUTER_RULEBOOK)")
    explain.add_argument("--at", type=_instant, help="decision time for --lead (ISO 8601; default now)")

    bench = sub.add_parser("bench", help="benchmarks (figures for docs/benchmarks.md)")
    bench_sub = bench.add_subparsers(dest="scenario", required=True)
    decide_bench = bench_sub.add_parser("decide", help="pure routing decisions per second on one core")
    decide_bench.add_argument("--reps", type=int, default=200)
    decide_bench.add_argument("--routes", type=int, default=50)
    decide_bench.add_argument("--accounts", type=int, default=2000)
    decide_bench.add_argument("--count", type=int, default=20_000, help="decisions to time")
    decide_bench.add_argument("--record", type=Path, help="append the figures to this markdown file")
    sla_bench = bench_sub.add_parser(
        "sla", help="SLA timers in Redis: memory per timer, breach lateness (steady, burst), touch rate"
    )
    sla_bench.add_argument("--timers", type=int, default=1_000_000, help="open breach timers to load")
    sla_bench.add_argument("--burst", type=int, default=100_000, help="timers falling due at once")
    sla_bench.add_argument("--rate", type=float, default=1000.0, help="timers falling due per second")
    sla_bench.add_argument("--seconds", type=float, default=20.0, help="length of the steady window")
    sla_bench.add_argument("--buckets", type=int, default=6, help="timer buckets (activities partitions)")
    sla_bench.add_argument(
        "--redis-url", help="use this Redis (default: a private redis-server, stopped after)"
    )
    sla_bench.add_argument("--record", type=Path, help="append the figures to this markdown file")
    pipe_bench = bench_sub.add_parser(
        "pipeline", help="leads/s and publish->assignment latency of one router vs a bare aiokafka loop"
    )
    pipe_bench.add_argument("--count", type=int, default=20_000, help="leads for the max-throughput phase")
    pipe_bench.add_argument(
        "--rates", type=_rates, default=(100.0, 1000.0, 5000.0), help="fixed rates, comma-separated"
    )
    pipe_bench.add_argument("--duration", type=float, default=10.0, help="seconds at each fixed rate")
    pipe_bench.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics")
    pipe_bench.add_argument("--drain-seconds", type=float, default=120.0, help="longest wait for a phase")
    pipe_bench.add_argument("--no-ceiling", action="store_true", help="skip the bare aiokafka loop")
    pipe_bench.add_argument(
        "--kafka", help="bootstrap servers (default: LEADROUTER_KAFKA__BOOTSTRAP_SERVERS)"
    )
    pipe_bench.add_argument("--redis-url", help="Redis URL (default: LEADROUTER_REDIS__URL)")
    pipe_bench.add_argument("--record", type=Path, help="append the figures to this markdown file")
    scale_bench = bench_sub.add_parser(
        "scale", help="throughput and latency of 1, 2 and 4 router processes on topics of 8 partitions"
    )
    scale_bench.add_argument("--processes", type=_rates, default=(1.0, 2.0, 4.0), help="comma-separated")
    scale_bench.add_argument("--partitions", type=int, default=8)
    scale_bench.add_argument("--count", type=int, default=20_000, help="leads for the max-throughput phase")
    scale_bench.add_argument("--rate", type=float, default=1000.0, help="leads/s of the latency phase")
    scale_bench.add_argument("--duration", type=float, default=10.0, help="seconds of the latency phase")
    scale_bench.add_argument("--drain-seconds", type=float, default=120.0, help="longest wait for a phase")
    scale_bench.add_argument(
        "--kafka", help="bootstrap servers (default: LEADROUTER_KAFKA__BOOTSTRAP_SERVERS)"
    )
    scale_bench.add_argument("--redis-url", help="Redis URL (default: LEADROUTER_REDIS__URL)")
    scale_bench.add_argument("--record", type=Path, help="append the figures to this markdown file")

    from router.errors import DLQ_REASONS

    dlq = sub.add_parser("dlq", help="inspect or replay dead-lettered records (<topic>.dlq)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_inspect = dlq_sub.add_parser("inspect", help="list dead letters (no consumer group, commits nothing)")
    dlq_replay = dlq_sub.add_parser("replay", help="republish dead letters to their source topic, once")
    for dlq_cmd in (dlq_inspect, dlq_replay):
        dlq_cmd.add_argument("topic", help="base topic name, such as leads (the environment prefix is added)")
        dlq_cmd.add_argument(
            "--reason",
            action="append",
            choices=DLQ_REASONS,
            metavar="REASON",
            help=f"only this reason, repeatable ({', '.join(DLQ_REASONS)})",
        )
    dlq_inspect.add_argument(
        "--limit", type=int, metavar="N", help="print at most N records (all are counted)"
    )
    dlq_inspect.add_argument("--json", action="store_true", help="one JSON object a line, then a summary")
    dlq_inspect.add_argument(
        "--show-value", action="store_true", help="also print key and value (may hold PII)"
    )
    dlq_replay.add_argument(
        "--dry-run", action="store_true", help="print what would be replayed; commit nothing"
    )
    dlq_replay.add_argument(
        "--from-offset", type=int, metavar="N", help="skip dead letters below offset N for good"
    )

    report = sub.add_parser("report", help="speed to lead per rep and team, from the recorded events")
    report.add_argument("--since", default="7d", help="how far back: 7d, 24h, 90m (default 7d)")

    schemas = sub.add_parser("schemas", help="write (or --check) docs/schemas/*.json from the models")
    schemas.add_argument("--dir", type=Path, default=Path("docs/schemas"))
    schemas.add_argument("--check", action="store_true")
    return parser


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. 2026-11-23T09:00:00+00:00)")
    return value


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
    import logging

    from router.devinfra.topics import ensure_topics
    from router.errors import ConfigError, CredentialsRejected
    from router.kafka import client_options
    from router.logs import log
    from router.worker import run_worker

    if args.http_port is not None:
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"port": args.http_port})}
        )

    async def main(stop: asyncio.Event) -> int:
        if args.create_topics:
            await ensure_topics(
                settings.kafka.bootstrap_servers,
                settings.topics.all_topics(),
                options=client_options(settings.kafka),
            )
        await run_worker(settings, args.role, stop)
        return 0

    try:
        return _run_until_signal(main)
    except CredentialsRejected as exc:
        # One clear line, then exit 3: restarting with the same secret cannot help.
        logger = logging.getLogger("leadrouter.worker")
        log(logger, "worker.credentials_rejected", logging.ERROR, service=exc.service, error=str(exc))
        return 3
    except ConfigError as exc:
        # Exit 2, as for other files the CLI cannot use: fix the setting, then start again.
        logger = logging.getLogger("leadrouter.worker")
        log(logger, "worker.config_invalid", logging.ERROR, setting=exc.setting, error=str(exc))
        return 2


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


def _load_rulebook(path: Path) -> tuple[str, Rulebook] | int:
    """The file's text and rulebook, or the exit code after saying why not (2 unreadable, 1 invalid)."""
    from rules.rulebook import RulebookError, parse_rulebook

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read: {getattr(exc, 'strerror', None) or 'not UTF-8'}", file=sys.stderr)
        return 2
    try:
        return text, parse_rulebook(text, str(path))
    except RulebookError as exc:
        print(exc, file=sys.stderr)
        return 1


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules.lint import lines_of, lint

    loaded = _load_rulebook(args.file)
    if isinstance(loaded, int):
        return loaded
    text, book = loaded
    warnings = lint(book, lines_of(text))
    print(
        f"{args.file}: ok (version {book.version}: {len(book.reps)} reps, "
        f"{len(book.teams)} teams, {len(book.routes)} routes"
        + (f"; {len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else ")")
    )
    for warning in warnings:
        print(f"warning: {warning}")
    if warnings and args.strict:
        print(f"{args.file}: warnings are errors under --strict", file=sys.stderr)
        return 1
    return 0


def _simulation_leads(
    args: argparse.Namespace, book: Rulebook
) -> tuple[list[tuple[Lead, datetime]], str] | int:
    """The leads to simulate and a description of them, or an exit code (2)."""
    from router.leadfile import DEFAULT_START, LeadFileError, generate_leads, read_leads

    start = args.start or DEFAULT_START
    if args.leads is None:
        domains = [d for account in book.named_accounts for d in account.domains]
        return generate_leads(args.generate, args.seed, start, domains), (
            f"{args.generate:,} generated leads (seed {args.seed})"
        )
    try:
        leadfile = read_leads(args.leads, start)
    except LeadFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    for problem in leadfile.problems[:20]:
        print(f"{args.leads}: {problem}", file=sys.stderr)
    if len(leadfile.problems) > 20:
        print(f"{args.leads}: ... and {len(leadfile.problems) - 20} more", file=sys.stderr)
    if leadfile.skipped:
        print(f"{args.leads}: skipped {leadfile.skipped} bad line(s)", file=sys.stderr)
    return leadfile.leads, f"{len(leadfile.leads):,} leads from {args.leads}"


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from rules.compiled import compile_rulebook
    from rules.simulate import compare, comparison_lines, report_lines, simulate

    if (args.leads is None) == (args.generate is None):
        print("leadrouter simulate: give either --leads FILE or --generate N", file=sys.stderr)
        return 2
    if args.generate is not None and args.generate < 1:
        print("leadrouter simulate: --generate needs N >= 1", file=sys.stderr)
        return 2
    rulebook_path = args.rulebook or settings.rulebook
    loaded = _load_rulebook(rulebook_path)
    if isinstance(loaded, int):
        return loaded
    book = loaded[1]
    other = None if args.compare is None else _load_rulebook(args.compare)
    if isinstance(other, int):
        return other
    found = _simulation_leads(args, book)
    if isinstance(found, int):
        return found
    leads, source = found
    touch = None if args.touch_after is None else timedelta(seconds=args.touch_after)
    result = simulate(compile_rulebook(book), leads, touch)
    touched = f", each touched {args.touch_after:g}s after assignment" if touch else ", none touched"
    print(f"simulate: {rulebook_path} (version {book.version}) on {source}{touched}")
    for line in report_lines(result):
        print(line)
    if touch is None and result.capacity_hits > result.leads // 2:
        print("hint: without --touch-after no lead is ever touched, so reps fill up; "
              "try --touch-after 300 (a first touch 5 minutes after assignment)")  # fmt: skip
    if other is not None:
        baseline = simulate(compile_rulebook(other[1]), leads, touch)
        print()
        print(
            f"compare: {args.compare} (version {other[1].version}): assigned {baseline.assigned:,}, "
            f"queued {baseline.queued:,}, capacity hits {baseline.capacity_hits:,}"
        )
        for line in comparison_lines(compare(baseline, result), str(args.compare), str(rulebook_path)):
            print(line)
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from router.explain import UnreadableRecord, explain, explain_event, hypothetical, load_stored
    from router.leadfile import LeadFileError, read_lead
    from rules.compiled import compile_rulebook

    if (args.lead_id is None) == (args.lead is None):
        print("leadrouter explain: give a LEAD_ID (a routed lead) or --lead FILE (a hypothetical one)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.lead is not None:
        loaded = _load_rulebook(args.rulebook or settings.rulebook)
        if isinstance(loaded, int):
            return loaded
        try:
            lead = read_lead(args.lead)
        except LeadFileError as exc:
            print(exc, file=sys.stderr)
            return 2
        # The clock is read here, at the edge: the decision itself never reads it.
        at = args.at or datetime.now(UTC)
        for line in explain(hypothetical(compile_rulebook(loaded[1]), lead, at)):
            print(line)
        print("(hypothetical: decided with no leads open and every rotation at its start)")
        return 0
    if args.rulebook is not None or args.at is not None:
        print("leadrouter explain: --rulebook and --at go with --lead, not with a LEAD_ID", file=sys.stderr)
        return 2
    from redis.exceptions import RedisError

    try:
        stored = asyncio.run(load_stored(settings, args.lead_id))
    except (RedisError, OSError) as exc:
        print(f"leadrouter explain: cannot read Redis: {type(exc).__name__}", file=sys.stderr)
        return 2
    except UnreadableRecord as exc:
        print(f"leadrouter explain: {exc}", file=sys.stderr)
        return 1
    if stored is None:
        print(
            f"leadrouter explain: no decision recorded for lead {args.lead_id!r} "
            f"(unknown lead, another LEADROUTER_REDIS__PREFIX, or expired after the retention period)",
            file=sys.stderr,
        )
        return 1
    if stored.decision is not None:
        lines = explain(stored.decision)
    else:
        assert stored.event is not None  # a record holds at least one of them
        lines = explain_event(stored.event)
    for line in lines:
        print(line)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import re

    from router.report import read_report
    from rules.report import report_lines

    match = re.fullmatch(r"(\d+)([dhm])", args.since.strip())
    if match is None:
        print("leadrouter report: --since takes a number and d, h or m (7d, 24h, 90m)", file=sys.stderr)
        return 2
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    since = datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        report, read = asyncio.run(read_report(settings, since))
    except LookupError as exc:
        print(f"leadrouter report: {exc}", file=sys.stderr)
        return 1
    print(f"report: since {since.isoformat(timespec='minutes')}, {read:,} records read")
    for line in report_lines(report):
        print(line)
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


def _rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from exc


def _bench_pipeline(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError
    from redis.exceptions import RedisError

    from router.bench import pipeline
    from router.bench.record import append
    from router.devinfra.process import InfraError

    scale = args.scenario == "scale"
    rates = (args.rate,) if scale else args.rates
    ceiling = not scale and not args.no_ceiling
    options = pipeline.PipelineOptions(
        args.count, rates, args.duration, args.partitions, args.drain_seconds, ceiling
    )
    processes = [int(n) for n in args.processes] if scale else [1]
    if min(processes) < 1:
        print("leadrouter bench scale: --processes must be positive", file=sys.stderr)
        return 2
    if (problem := options.problem()) is not None:
        print(f"leadrouter bench {args.scenario}: {problem}", file=sys.stderr)
        return 2
    settings = Settings()
    # --kafka and --redis-url replace the addresses only: SASL and TLS settings apply.
    kafka = settings.kafka
    if args.kafka:
        kafka = kafka.model_copy(update={"bootstrap_servers": args.kafka})
    redis = _redis_at(settings, args.redis_url)
    say = lambda note: print(note, file=sys.stderr)  # noqa: E731
    try:
        if scale:
            lines = pipeline.run_scale(processes, options, kafka, redis, say).lines()
        else:
            lines = pipeline.run(options, kafka, redis, say).lines()
    except (InfraError, RedisError, KafkaError, OSError, RuntimeError) as exc:
        print(f"leadrouter bench {args.scenario}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if args.record is not None:
        append(args.record, args.scenario, lines)
        print(f"recorded in {args.record}")
    return 0


def _redis_at(settings: Settings, url: str | None) -> RedisSettings:
    """The Redis settings with `url` (a --redis-url) in place of the configured one."""
    from pydantic import SecretStr

    if url is None:
        return settings.redis
    return settings.redis.model_copy(update={"url": SecretStr(url)})


def cmd_bench(args: argparse.Namespace) -> int:
    from router.bench import decide
    from router.bench.record import append

    if args.scenario in ("pipeline", "scale"):
        return _bench_pipeline(args)
    if args.scenario == "sla":
        from redis.exceptions import RedisError

        from router.bench import sla
        from router.devinfra.process import InfraError

        options = sla.SlaOptions(args.timers, args.burst, args.rate, args.seconds, args.buckets)
        if (problem := options.problem()) is not None:
            print(f"leadrouter bench sla: {problem}", file=sys.stderr)
            return 2
        # Without --redis-url the benchmark starts a private redis-server of its own.
        redis = _redis_at(Settings(), args.redis_url) if args.redis_url else None
        try:
            sla_result = sla.run(options, redis, lambda note: print(note, file=sys.stderr))
        except (InfraError, RedisError, OSError) as exc:
            print(f"leadrouter bench sla: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        for line in sla_result.lines():
            print(line)
        if args.record is not None:
            append(args.record, "sla", sla_result.lines())
            print(f"recorded in {args.record}")
        return 0
    result = decide.run(args.reps, args.routes, args.accounts, args.count)
    lines = result.lines()
    for line in lines:
        print(line)
    if args.record is not None:
        append(args.record, "decide", lines)
        print(f"recorded in {args.record}")
    return 0


def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka.errors import KafkaError

    from router import dlq

    reasons = frozenset(args.reason) if args.reason else None
    try:
        if args.dlq_command == "inspect":
            if args.limit is not None and args.limit < 0:
                print("leadrouter dlq inspect: --limit needs N >= 0", file=sys.stderr)
                return 2
            found = asyncio.run(
                dlq.inspect(
                    settings, args.topic, reasons=reasons, limit=args.limit, keep_values=args.show_value
                )
            )
            for letter in found.letters:
                print(
                    dlq.letter_json(letter, args.show_value)
                    if args.json
                    else dlq.letter_line(letter, args.show_value)
                )
            print(found.summary_json() if args.json else found.summary_line())
            return 0
        if args.from_offset is not None and args.from_offset < 0:
            print("leadrouter dlq replay: --from-offset needs N >= 0", file=sys.stderr)
            return 2
        done = asyncio.run(
            dlq.replay(
                settings, args.topic, reasons=reasons, dry_run=args.dry_run, from_offset=args.from_offset
            )
        )
    except dlq.DlqError as exc:
        print(f"leadrouter dlq {args.dlq_command}: {exc}", file=sys.stderr)
        return 1
    except (KafkaError, OSError) as exc:
        print(f"leadrouter dlq {args.dlq_command}: Kafka unavailable: {exc!r}", file=sys.stderr)
        return 2
    if done.dry_run:
        for letter in done.letters:
            print(f"would replay {dlq.letter_line(letter)}")
    for letter in done.unreplayable:
        print(f"skipped {dlq.letter_line(letter)}")
    print(done.summary_line())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from router.errors import ConfigError

    try:
        return _main(argv)
    except BrokenPipeError:
        # `leadrouter ... | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ConfigError as exc:
        # A TLS file any command's clients need (the worker logs it instead): exit 2.
        print(f"leadrouter: {exc}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "rules":
        return cmd_rules_check(args)
    if args.command == "schemas":
        return cmd_schemas(args)
    settings = Settings()
    if args.command == "simulate":
        return cmd_simulate(args, settings)
    if args.command == "explain":
        return cmd_explain(args, settings)
    if args.command == "report":
        return cmd_report(args, settings)
    from router.logs import configure_logging

    configure_logging(settings.log)
    if args.command == "worker":
        return cmd_worker(args, settings)
    if args.command == "dev":
        return cmd_dev(args, settings)
    if args.command == "dlq":
        return cmd_dlq(args, settings)
    return cmd_demo(args, settings)


if __name__ == "__main__":
    sys.exit(main())
