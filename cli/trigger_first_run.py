"""Run the served deadline check and delivery deployments once, right now, and wait for them."""

import asyncio

from prefect.deployments.flow_runs import arun_deployment

DEPLOYMENTS = ("check-grant-deadlines/check-grant-deadlines", "deliver-outbox/deliver-outbox")


async def trigger() -> None:
    """Run each deployment in order and fail if one does not complete."""
    for name in DEPLOYMENTS:
        flow_run = await arun_deployment(name, timeout=240)
        state = flow_run.state
        print(f"[bevilling] {name}: {state.name if state else 'unknown'}", flush=True)
        if state is None or not state.is_completed():
            raise SystemExit(f"{name} did not complete: {state}")


if __name__ == "__main__":
    asyncio.run(trigger())
