"""The ceiling of `bench pipeline`: a bare aiokafka consume-and-produce loop.

The same Kafka clients as the router (`router.kafka`: acks=all, idempotence, linger,
read_committed, manual commits after the batch's records are acknowledged), the same
poll size, and nothing else: every record is copied to the output topic unchanged.

    python -m router.bench.bare GROUP_PREFIX IN_TOPIC OUT_TOPIC

It connects as the router does, from LEADROUTER_KAFKA__* (address, SASL, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from aiokafka.structs import OffsetAndMetadata

from router.kafka import make_consumer, make_producer, send_now
from router.settings import KafkaSettings, Settings


async def copy_loop(settings: KafkaSettings, source: str, target: str, stop: asyncio.Event) -> None:
    consumer = make_consumer(settings, "bare", source)
    producer = make_producer(settings)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=int(settings.poll_timeout_seconds * 1000), max_records=settings.max_poll_records
            )
            if not batches:
                continue
            pending = []
            for records in batches.values():
                for record in records:
                    pending.append(await producer.send(target, value=record.value, key=record.key))
            send_now(producer)  # as the router's Outbox.flush does
            await asyncio.gather(*pending)
            await consumer.commit(
                {tp: OffsetAndMetadata(recs[-1].offset + 1, "") for tp, recs in batches.items()}
            )
    finally:
        await consumer.stop()
        await producer.stop()


async def _main(group_prefix: str, source: str, target: str) -> None:
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    settings = Settings().kafka.model_copy(update={"group_prefix": group_prefix})
    await copy_loop(settings, source, target, stop)


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:4]))
