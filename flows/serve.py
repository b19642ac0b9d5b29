"""Serve every deployment declared in prefect.yaml from this one process (`make run`)."""

import argparse
import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.schedules import Cron, Interval

ROOT = Path(__file__).resolve().parents[1]


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """Import `path/to/module.py:function` as a Prefect flow."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    if not isinstance(flow, Flow):
        raise TypeError(f"{entrypoint} is not a Prefect flow")
    return flow


def schedules_of(spec: dict[str, Any]) -> list[Any]:
    """Prefect schedule objects for a deployment entry of prefect.yaml."""
    result: list[Any] = []
    for schedule in spec.get("schedules") or []:
        timezone = schedule.get("timezone", "Europe/Copenhagen")
        if "cron" in schedule:
            result.append(Cron(schedule["cron"], timezone=timezone))
        elif "interval" in schedule:
            result.append(Interval(schedule["interval"], timezone=timezone))
        else:
            raise ValueError(f"unsupported schedule in {spec['name']}: {schedule}")
    return result


def deployments(path: Path = ROOT / "prefect.yaml") -> list[Any]:
    """RunnerDeployments built from prefect.yaml (one source of truth for names and schedules)."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    built = []
    for spec in config["deployments"]:
        flow = load_flow(spec["entrypoint"])
        built.append(flow.to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters") or {}, schedules=schedules_of(spec),
            concurrency_limit=spec.get("concurrency_limit"),
        ))
    return built


def main() -> None:
    """Serve until interrupted; schedules stay active when this process stops."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    serve(*deployments(), pause_on_shutdown=False)


if __name__ == "__main__":
    main()
