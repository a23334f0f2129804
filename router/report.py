"""`leadrouter report`: read the recorded events of a period back from Kafka."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import Field, TypeAdapter, ValidationError

from router.kafka import client_options, describe_partitions
from router.settings import Settings
from rules.events import LeadAssigned, SlaBreached, SlaMet
from rules.report import Report, aggregate

Recorded = Annotated[LeadAssigned | SlaMet | SlaBreached, Field(discriminator="type")]
_RECORDED: TypeAdapter[LeadAssigned | SlaMet | SlaBreached] = TypeAdapter(Recorded)
_WANTED = (b'"lead.assigned"', b'"sla.met"', b'"sla.breached"')


async def read_report(settings: Settings, since: datetime) -> tuple[Report, int]:
    """Aggregate every assignment and SLA outcome recorded since `since`; also the
    number of records read."""
    topics = settings.topics
    names = [topics.name(topics.assignments), topics.name(topics.sla_events)]
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        partitions = await describe_partitions(admin, names)
    finally:
        await admin.close()
    if not partitions:
        raise LookupError(f"topics not found: {', '.join(names)}")
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), group_id=None, enable_auto_commit=False)
    await consumer.start()
    events: list[LeadAssigned | SlaMet | SlaBreached] = []
    read = 0
    try:
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        pending = {}
        for tp in partitions:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                pending[tp] = ends[tp]
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    read += 1
                    value = record.value or b""
                    if any(kind in value for kind in _WANTED):
                        with contextlib.suppress(ValidationError):  # not an event this report counts
                            events.append(_RECORDED.validate_json(value))
                if records and records[-1].offset + 1 >= pending[tp]:
                    del pending[tp]
    finally:
        await consumer.stop()
    return aggregate(events), read
