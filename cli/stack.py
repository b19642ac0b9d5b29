"""Where a flow command runs: on the Prefect server of `make run` when it is up, else directly.

`make run` writes `var/prefect-api-url` (JSON: `api_url`, `prefect_home`) while it runs. A flow
command reads it (or an explicit `PREFECT_API_URL`), and when that server answers, runs the
flow in this process as a run of its deployment — in the UI, linked to the deployment. With no
server it never starts a temporary one: it calls the same service directly, without importing
Prefect, so nothing is written to `~/.prefect`.
"""

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from config.settings import Settings, get_settings

T = TypeVar("T")
PROBE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Stack:
    """A Prefect server that answered."""

    api_url: str
    prefect_home: str | None
    web_base_url: str | None = None

    @property
    def ui_url(self) -> str:
        """The UI's address (the API URL without its `/api`)."""
        return self.api_url.removesuffix("/").removesuffix("/api")


def _answers(api_url: str) -> bool:
    try:
        # S310: a URL of our own configuration (the local stack or PREFECT_API_URL).
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health",  # noqa: S310
                                    timeout=PROBE_TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def find_stack(settings: Settings) -> Stack | None:
    """The Prefect server to run flows on: PREFECT_API_URL, else the local stack's file."""
    explicit = os.environ.get("PREFECT_API_URL", "").strip()
    if explicit:
        return Stack(explicit, os.environ.get("PREFECT_HOME")) if _answers(explicit) else None
    try:
        recorded = json.loads(settings.local_stack_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    api_url = recorded.get("api_url") if isinstance(recorded, dict) else None
    if not isinstance(api_url, str) or not _answers(api_url):
        return None
    home, web = recorded.get("prefect_home"), recorded.get("web_base_url")
    return Stack(api_url, home if isinstance(home, str) else None,
                 web if isinstance(web, str) else None)


def run_flow_command(settings: Settings, *, deployment: str, flow: str,
                     parameters: dict[str, Any], direct: Callable[[], T]) -> T:
    """Run `flow` ("module:function") as a run of `deployment` on the stack, or `direct()`."""
    stack = find_stack(settings)
    if stack is None:
        typer.echo("no Prefect server running (`make run` starts one): ran the service "
                   "directly, not as a flow run", err=True)
        return direct()
    # Prefect reads these at import: set them before the first `import prefect`.
    os.environ["PREFECT_API_URL"] = stack.api_url
    if stack.prefect_home:
        os.environ.setdefault("PREFECT_HOME", stack.prefect_home)
    if stack.web_base_url and "BEVILLING_WEB_BASE_URL" not in os.environ:
        # The links this run signs must point at the stack's confirm page.
        os.environ["BEVILLING_WEB_BASE_URL"] = stack.web_base_url
        get_settings.cache_clear()
    result, run_id = _run_on_server(deployment=deployment, flow=flow, parameters=parameters)
    where = f"{stack.ui_url}/runs/flow-run/{run_id}" if run_id else stack.ui_url
    typer.echo(f"ran as a flow run on the Prefect server: {where}", err=True)
    return result  # type: ignore[no-any-return]  # the flow returns what `direct` does


def _run_on_server(*, deployment: str, flow: str,
                   parameters: dict[str, Any]) -> tuple[Any, str | None]:
    import importlib

    from prefect import Flow
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.flow_engine import run_flow
    from prefect.states import Pending

    module_name, _, name = flow.partition(":")
    target = getattr(importlib.import_module(module_name), name)
    if not isinstance(target, Flow):
        raise TypeError(f"{flow} is not a Prefect flow")

    async def create() -> Any:
        async with get_client() as client:
            try:
                found = await client.read_deployment_by_name(deployment)
            except ObjectNotFound:
                return None  # server up but nothing served: an ad-hoc run, still in the UI
            # Pending, not Scheduled: the serving process must not start it a second time.
            return await client.create_flow_run_from_deployment(
                found.id, parameters=parameters, state=Pending())

    flow_run = asyncio.run(create())
    outcome = run_flow(target, flow_run=flow_run, parameters=parameters)
    if asyncio.iscoroutine(outcome):
        outcome = asyncio.run(outcome)
    return outcome, str(flow_run.id) if flow_run is not None else None
