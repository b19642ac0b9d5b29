"""Prefect flow `alert-admins`: mail the admins when a flow run failed or crashed.

Started by the deployment trigger in prefect.yaml on `prefect.flow-run.Failed` /
`prefect.flow-run.Crashed` — terminal states, reached after a run's retries, so one incident
is one alert; the outbox key (`alert:<flow run>:<admin>`) makes a repeated trigger harmless.
The mail goes through our own outbox: when delivery itself is what fails, the alert waits there
and leaves with the first delivery that works.
"""

from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_UI_URL

from db.engine import transaction
from flows import runtime
from workflow.admin_alerts import Incident, alert_admins
from workflow.context import make_context
from workflow.events import OUTBOX_ENQUEUED, announce

FLOW_NAME = "alert-admins"


@task(name="enqueue-admin-alert")
def enqueue_admin_alert(incident: Incident) -> int:
    """The alert for every admin, in one transaction."""
    ctx = make_context(runtime.settings(), now=runtime.utc_now())
    with transaction(runtime.engine()) as session:
        count = alert_admins(session, incident, ctx=ctx)
    get_run_logger().info("%s %s: alerted %d admin(s)", incident.flow_run_name,
                          incident.state, count)
    announce(OUTBOX_ENQUEUED, count=count, source=FLOW_NAME)
    return count


@flow(name=FLOW_NAME, flow_run_name="alert-admins", log_prints=True)
async def alert_admins_of_failure(flow_run_id: str) -> int:
    """Mail the admins about one failed or crashed flow run (`prefect.flow-run.<id>` or `<id>`)."""
    run_id = UUID(flow_run_id.removeprefix("prefect.flow-run."))
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        failed_flow = await client.read_flow(run.flow_id)
    if failed_flow.name == FLOW_NAME:
        return 0  # never alert about an alert: that way lies a loop
    ui = str(PREFECT_UI_URL.value() or "").rstrip("/")
    incident = Incident(
        flow_run_id=str(run_id), flow_run_name=run.name, flow_name=failed_flow.name,
        state=(run.state.name if run.state else None) or "?",
        message=(run.state.message or "")[:500] if run.state else "",
        url=f"{ui}/runs/flow-run/{run_id}" if ui else str(run_id))
    return enqueue_admin_alert(incident)
