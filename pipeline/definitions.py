"""The code location: every asset group of the shop, with resources chosen from the environment."""

from __future__ import annotations

import dagster as dg

from pipeline.b2b.definitions import build_defs as b2b_defs
from pipeline.basket.definitions import build_defs as basket_defs
from pipeline.clickstream.definitions import build_defs as clickstream_defs
from pipeline.events.definitions import build_defs as events_defs
from pipeline.insights.definitions import build_defs as insights_defs
from pipeline.resources import build_resources
from pipeline.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        events_defs(settings),
        insights_defs(settings),
        b2b_defs(settings),
        clickstream_defs(settings),
        basket_defs(settings),
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
