"""Refresh the semantic model in the Power BI service after each export (optional).

In the definitions only when the CUSTSEG_POWERBI_* variables are set
(``orchestration/settings.py``); without them the asset does not exist, so nothing fails.
"""

import dagster as dg

from orchestration.publish.powerbi_service import API_URL, AUTHORITY_URL, PowerBIService
from orchestration.settings import POWERBI_SECRET, PowerBIServiceSettings


class PowerBIServiceResource(dg.ConfigurableResource):
    """A service principal's access to one semantic model (the secret: an env var)."""

    tenant_id: str
    client_id: str
    client_secret: str
    workspace_id: str
    semantic_model_id: str
    api_url: str = API_URL
    authority_url: str = AUTHORITY_URL
    poll_seconds: float = 10.0
    wait_seconds: float = 1800.0

    @classmethod
    def from_settings(
        cls, s: PowerBIServiceSettings, poll_seconds: float = 10.0
    ) -> "PowerBIServiceResource":
        return cls(
            poll_seconds=poll_seconds,
            tenant_id=s.tenant_id,
            client_id=s.client_id,
            client_secret=dg.EnvVar(POWERBI_SECRET),
            workspace_id=s.workspace_id,
            semantic_model_id=s.semantic_model_id,
            api_url=s.api_url or API_URL,
            authority_url=s.authority_url or AUTHORITY_URL,
        )

    def service(self) -> PowerBIService:
        return PowerBIService(
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            client_secret=self.client_secret,
            workspace_id=self.workspace_id,
            semantic_model_id=self.semantic_model_id,
            api_url=self.api_url,
            authority_url=self.authority_url,
        )


@dg.asset(
    key="powerbi_semantic_model_refresh",
    deps=["powerbi_export"],
    group_name="exports",
    kinds={"powerbi"},
    description="Refreshes the semantic model published to the Power BI service from the new "
    "export (REST API, service principal from CUSTSEG_POWERBI_*); waits until it ends.",
)
def powerbi_semantic_model_refresh(
    context: dg.AssetExecutionContext, powerbi_service: PowerBIServiceResource
):
    result = powerbi_service.service().refresh(
        poll_seconds=powerbi_service.poll_seconds, wait_seconds=powerbi_service.wait_seconds
    )
    context.log.info(f"Power BI refresh {result.request_id}: {result.status}")
    return dg.MaterializeResult(
        metadata={
            "request_id": result.request_id,
            "status": result.status,
            "start_time": result.start_time or "",
            "end_time": result.end_time or "",
            "seconds": dg.MetadataValue.float(round(result.seconds, 1)),
        }
    )
