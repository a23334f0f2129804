"""Pure routing and SLA logic for leadrouter.

Nothing in this package performs I/O or reads the clock: time is passed in.
`tests/unit/test_purity.py` enforces that by walking the imports.
"""
