"""Run the served deadline check and delivery deployments once, right now, and wait for them."""

import asyncio
import time

from prefect.client.orchestration import get_client
from prefect.deployments.flow_runs import arun_deployment
from prefect.exceptions import ObjectNotFound

DEPLOYMENTS = ("check-grant-deadlines/check-grant-deadlines", "deliver-outbox/deliver-outbox")
REGISTRATION_TIMEOUT_SECONDS = 180


async def wait_until_served(names: tuple[str, ...]) -> None:
    """Wait until `flows.serve` has registered every deployment (slow on a busy machine)."""
    deadline = time.monotonic() + REGISTRATION_TIMEOUT_SECONDS
    async with get_client() as client:
        for name in names:
            while True:
                try:
                    await client.read_deployment_by_name(name)
                    break
                except ObjectNotFound:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{name} was not served within "
                                         f"{REGISTRATION_TIMEOUT_SECONDS} s") from None
                    await asyncio.sleep(1)


async def trigger() -> None:
    """Run each deployment in order and fail if one does not complete."""
    await wait_until_served(DEPLOYMENTS)
    for name in DEPLOYMENTS:
        flow_run = await arun_deployment(name, timeout=240)
        state = flow_run.state
        print(f"[bevilling] {name}: {state.name if state else 'unknown'}", flush=True)
        if state is None or not state.is_completed():
            raise SystemExit(f"{name} did not complete: {state}")


if __name__ == "__main__":
    asyncio.run(trigger())
