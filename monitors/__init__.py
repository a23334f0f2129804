"""First-touch tracking, SLA timers in Redis, alerts and Prometheus metrics."""
