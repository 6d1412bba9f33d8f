"""The sans-IO xDS protocol core: one object per stream, requests in, actions out.

Nothing in this package imports grpc or asyncio, logs, reads flags or clocks
(``tests/unit/test_protocol_purity.py`` enforces the imports).
"""
