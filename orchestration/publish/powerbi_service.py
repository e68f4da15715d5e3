"""Refresh the published semantic model in the Power BI service, through its REST API.

A service principal (an Entra ID app with a client secret, added to the workspace) gets a
token with the client-credentials grant, starts a refresh of the semantic model
(``POST .../groups/{workspace}/datasets/{model}/refreshes``) and polls the refresh history
until that refresh ends. No Dagster here: ``orchestration/assets/powerbi_refresh.py`` wraps
it. Why not dagster-powerbi: its API address is a module constant, so a test could point
it at a local fake of the API only by patching the library; here the API and login URLs are
parameters (settings CUSTSEG_POWERBI_API_URL / _AUTHORITY_URL, also for other clouds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

API_URL = "https://api.powerbi.com/v1.0/myorg"
AUTHORITY_URL = "https://login.microsoftonline.com"
SCOPE = "https://analysis.windows.net/powerbi/api/.default"
# Refresh history statuses: Unknown = still running; the others are final.
RUNNING = "Unknown"


class PowerBIError(RuntimeError):
    """The Power BI service refused a call, or the refresh failed or did not finish."""


@dataclass(frozen=True)
class RefreshResult:
    request_id: str
    status: str
    start_time: str | None
    end_time: str | None
    seconds: float


@dataclass
class PowerBIService:
    """One semantic model in one workspace, reached as a service principal."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    workspace_id: str
    semantic_model_id: str
    api_url: str = API_URL
    authority_url: str = AUTHORITY_URL
    timeout: float = 30.0  # seconds per HTTP call
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _token(self) -> str:
        url = f"{self.authority_url.rstrip('/')}/{quote(self.tenant_id)}/oauth2/v2.0/token"
        response = self.session.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": SCOPE,
            },
            timeout=self.timeout,
        )
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            detail = body.get("error_description") or body.get("error") or response.text[:200]
            raise PowerBIError(
                f"sign-in as {self.client_id} failed ({response.status_code}): {detail}"
            )
        return body["access_token"]

    def _refreshes_url(self) -> str:
        ws, model = quote(self.workspace_id), quote(self.semantic_model_id)
        return f"{self.api_url.rstrip('/')}/groups/{ws}/datasets/{model}/refreshes"

    def _call(self, method: str, token: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        response = self.session.request(
            method, self._refreshes_url(), headers=headers, timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            error = _json(response).get("error", {})
            detail = error.get("message") or error.get("code") or response.text[:200]
            raise PowerBIError(
                f"{method} semantic model {self.semantic_model_id} refreshes in workspace "
                f"{self.workspace_id}: {response.status_code} {detail}"
            )
        return response

    def refresh(
        self,
        poll_seconds: float = 10.0,
        wait_seconds: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> RefreshResult:
        """Start a refresh and wait until it ends; raise unless it completed."""
        started = clock()
        token = self._token()
        response = self._call("POST", token, json={"notifyOption": "NoNotification"})
        request_id = response.headers.get("RequestId", "")
        while True:
            entry = self._find(token, request_id)
            status = (entry or {}).get("status", RUNNING)
            if status != RUNNING:
                break
            if clock() - started > wait_seconds:
                raise PowerBIError(
                    f"refresh {request_id} still running after {wait_seconds:.0f} s; it goes on "
                    "in the Power BI service (see the semantic model's refresh history)"
                )
            sleep(poll_seconds)
        seconds = clock() - started
        if status != "Completed":
            detail = entry.get("serviceExceptionJson") or "no details from the service"
            raise PowerBIError(f"refresh {request_id} ended {status}: {detail}")
        return RefreshResult(
            request_id, status, entry.get("startTime"), entry.get("endTime"), seconds
        )

    def _find(self, token: str, request_id: str) -> dict | None:
        """This refresh in the history (the newest entries first); None until it shows."""
        history = _json(self._call("GET", token, params={"$top": "10"})).get("value", [])
        if not request_id:
            return history[0] if history else None
        return next((e for e in history if e.get("requestId") == request_id), None)


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
