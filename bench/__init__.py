"""Benchmarks of the event platform (DESIGN section 8): backfill throughput, live latency, scaling.

Every figure is a ratio within one run (the machine is shared, absolute seconds drift between
runs), so each measurement is taken side by side with its baselines on the same files.
``python -m bench.run`` (``make bench``) writes ``bench/results.md`` and ``bench/results.png``.
"""
