"""The rankings' automation condition, evaluated the way the automation sensor evaluates it."""

import dagster as dg

from pipeline.events.assets import build_event_assets
from pipeline.resources import build_resources
from pipeline.settings import Settings

SETTINGS = Settings.from_env({"PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-03"})


def _t1_updated(instance, hour):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["events", "t1_minute"], partition=hour))


def test_rankings_refresh_after_any_t1_hour_even_a_late_one():
    assets = dg.Definitions(assets=build_event_assets(SETTINGS), resources=build_resources(SETTINGS))
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=assets, instance=instance)
        assert result.get_num_requested(dg.AssetKey(["events", "rankings"])) == 0  # nothing upstream yet

        _t1_updated(instance, "2019-10-01-05:00")  # only one hour exists: eager() would wait for all
        result = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "rankings"])) == 1

        result = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "rankings"])) == 0  # handled: no repeat

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["events", "rankings"]))  # the run it asked for
        result = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "rankings"])) == 0

        _t1_updated(instance, "2019-10-01-01:00")  # a late file rematerialized an older hour
        result = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "rankings"])) == 1
        # partitioned assets are never requested by automation: the sensors own them
        for key in ("raw_files", "t1_minute", "t2_hour", "archive"):
            assert result.get_num_requested(dg.AssetKey(["events", key])) == 0
