"""Clickstream (seed 002): click files (JSON, CSV, Excel) -> clicks per day and grouping key ->
a trailing ``period``-day report in PostgreSQL and/or MongoDB. See README.md in this folder."""
