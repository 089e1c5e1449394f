"""Asset keys of the event group: every key carries the group as its prefix (``events/t1_minute``)."""

import dagster as dg

GROUP = "events"
OWNERS = ["team:data-platform"]

RAW_FILES = dg.AssetKey([GROUP, "raw_files"])
T1_MINUTE = dg.AssetKey([GROUP, "t1_minute"])
T2_HOUR = dg.AssetKey([GROUP, "t2_hour"])
RANKINGS = dg.AssetKey([GROUP, "rankings"])
DASHBOARD = dg.AssetKey([GROUP, "dashboard"])
ARCHIVE = dg.AssetKey([GROUP, "archive"])
T1_RETENTION = dg.AssetKey([GROUP, "t1_retention"])
T2_RETENTION = dg.AssetKey([GROUP, "t2_retention"])

# Freshness checks: evaluated by their sensor; kept out of the ingest runs (every live minute).
T1_FRESHNESS = dg.AssetCheckKey(T1_MINUTE, "t1_freshness")
RANKINGS_FRESHNESS = dg.AssetCheckKey(RANKINGS, "rankings_freshness")
FRESHNESS_CHECKS = dg.AssetSelection.checks(T1_FRESHNESS, RANKINGS_FRESHNESS)
