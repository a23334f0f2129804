"""Kafka-facing adapters of leadrouter: settings, codecs, the routing worker and the CLI."""
