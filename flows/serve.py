"""Serve every deployment declared in prefect.yaml from this one process (`make run`)."""

import argparse
import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.events import DeploymentTriggerTypes
from prefect.schedules import Cron, Interval
from pydantic import TypeAdapter

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


def triggers_of(spec: dict[str, Any]) -> list[Any]:
    """Deployment triggers of a prefect.yaml entry, validated as `prefect deploy` does."""
    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    return [adapter.validate_python({"name": f"{spec['name']}__automation_{number}", **trigger})
            for number, trigger in enumerate(spec.get("triggers") or [], start=1)]


def imap_configured() -> bool:
    """Whether an IMAP mailbox is configured (BEVILLING_IMAP_HOST)."""
    from flows.inbox import ImapSettings

    return ImapSettings().host is not None


def deployments(path: Path = ROOT / "prefect.yaml") -> list[Any]:
    """RunnerDeployments built from prefect.yaml (one source of truth for names and schedules).

    A deployment tagged `needs-imap` gets no schedule while no IMAP mailbox is configured: it
    would only run every minute to say so.
    """
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    built = []
    for spec in config["deployments"]:
        flow = load_flow(spec["entrypoint"])
        idle = "needs-imap" in (spec.get("tags") or []) and not imap_configured()
        built.append(flow.to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters") or {},
            schedules=[] if idle else schedules_of(spec), triggers=triggers_of(spec),
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
