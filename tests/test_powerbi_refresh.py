"""The Power BI service refresh, against a local fake of the sign-in and REST endpoints.

The fake speaks the parts of the API the refresh uses: the client-credentials token
(``/{tenant}/oauth2/v2.0/token``), ``POST .../refreshes`` (202 with a ``RequestId``) and the
refresh history (``GET .../refreshes``), whose entry stays ``Unknown`` (running) for a
given number of polls and then ends with the status the test asks for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import dagster as dg
import pytest

from orchestration.assets.powerbi_refresh import (
    PowerBIServiceResource,
    powerbi_semantic_model_refresh,
)
from orchestration.publish.powerbi_service import PowerBIError, PowerBIService
from orchestration.settings import PowerBIServiceSettings, SettingsError

TENANT, CLIENT, SECRET, WORKSPACE, MODEL = "tenant-1", "app-1", "s3cret", "ws-1", "sm-1"
ENV = {
    "CUSTSEG_POWERBI_TENANT_ID": TENANT,
    "CUSTSEG_POWERBI_CLIENT_ID": CLIENT,
    "CUSTSEG_POWERBI_CLIENT_SECRET": SECRET,
    "CUSTSEG_POWERBI_WORKSPACE_ID": WORKSPACE,
    "CUSTSEG_POWERBI_SEMANTIC_MODEL_ID": MODEL,
}
REFRESHES = f"/v1.0/myorg/groups/{WORKSPACE}/datasets/{MODEL}/refreshes"


class FakePowerBI:
    def __init__(self, polls_running: int = 1, final: str = "Completed"):
        self.polls_running, self.final = polls_running, final
        self.requests: list[tuple[str, str]] = []
        self.started: list[str] = []
        self.polls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == "Bearer token-abc":
                    return True
                self._send(403, {"error": {"code": "Forbidden", "message": "bad token"}})
                return False

            def do_POST(self):
                path = urlparse(self.path).path
                fake.requests.append(("POST", path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if path == f"/{TENANT}/oauth2/v2.0/token":
                    form = {k: v[0] for k, v in parse_qs(body).items()}
                    if form.get("client_secret") != SECRET or form.get("client_id") != CLIENT:
                        return self._send(
                            401,
                            {
                                "error": "invalid_client",
                                "error_description": "AADSTS7000215: Invalid client secret provided.",
                            },
                        )
                    assert form["grant_type"] == "client_credentials"
                    assert form["scope"] == "https://analysis.windows.net/powerbi/api/.default"
                    return self._send(200, {"access_token": "token-abc", "expires_in": 3599})
                if path == REFRESHES and self._authorized():
                    assert json.loads(body) == {"notifyOption": "NoNotification"}
                    fake.started.append(f"req-{len(fake.started) + 1}")
                    return self._send(202, {}, {"RequestId": fake.started[-1]})
                if path != REFRESHES:
                    self._send(404, {"error": {"code": "NotFound"}})

            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append(("GET", url.path))
                if url.path != REFRESHES:
                    return self._send(404, {"error": {"code": "NotFound"}})
                if not self._authorized():
                    return
                assert parse_qs(url.query) == {"$top": ["10"]}
                fake.polls += 1
                running = fake.polls <= fake.polls_running
                entries = [
                    {
                        "requestId": rid,
                        "refreshType": "ViaApi",
                        "startTime": "2026-01-01T05:00:00Z",
                        "status": "Unknown" if running else fake.final,
                        **({} if running else {"endTime": "2026-01-01T05:01:00Z"}),
                        **(
                            {"serviceExceptionJson": '{"errorCode":"ModelRefreshFailed"}'}
                            if fake.final == "Failed" and not running
                            else {}
                        ),
                    }
                    for rid in reversed(fake.started)
                ]
                older = {"requestId": "older", "status": "Completed", "refreshType": "Scheduled"}
                self._send(200, {"value": [*entries, older]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def service(self, secret: str = SECRET) -> PowerBIService:
        return PowerBIService(
            TENANT, CLIENT, secret, WORKSPACE, MODEL, api_url=f"{self.url}/v1.0/myorg",
            authority_url=self.url,
        )  # fmt: skip


@pytest.fixture
def fake():
    server = FakePowerBI(polls_running=2)
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_refresh_signs_in_starts_and_waits_for_its_own_refresh(fake):
    slept = []
    result = fake.service().refresh(poll_seconds=0.5, sleep=slept.append)
    assert (result.request_id, result.status) == ("req-1", "Completed")
    assert result.end_time == "2026-01-01T05:01:00Z"
    assert slept == [0.5, 0.5] and fake.polls == 3
    assert fake.requests[:2] == [("POST", f"/{TENANT}/oauth2/v2.0/token"), ("POST", REFRESHES)]


def test_a_failed_refresh_a_wrong_secret_and_a_timeout_raise(fake):
    fake.final, fake.polls_running = "Failed", 0
    with pytest.raises(PowerBIError, match="ended Failed: .*ModelRefreshFailed"):
        fake.service().refresh(sleep=lambda s: None)
    with pytest.raises(PowerBIError, match="sign-in as app-1 failed \\(401\\): AADSTS7000215"):
        fake.service(secret="wrong").refresh()
    assert "wrong" not in repr(fake.service(secret="wrong"))
    fake.polls, fake.polls_running = 0, 100
    ticks = iter(range(0, 10_000, 60))
    with pytest.raises(PowerBIError, match="still running after 300 s"):
        fake.service().refresh(wait_seconds=300, sleep=lambda s: None, clock=lambda: next(ticks))


def test_settings_all_or_nothing():
    assert PowerBIServiceSettings.from_env({}) is None
    s = PowerBIServiceSettings.from_env(ENV | {"CUSTSEG_POWERBI_API_URL": "http://x/api"})
    assert (s.tenant_id, s.semantic_model_id, s.api_url, s.authority_url) == (
        TENANT, MODEL, "http://x/api", None,
    )  # fmt: skip
    assert SECRET not in repr(s)
    partial = {k: v for k, v in ENV.items() if k != "CUSTSEG_POWERBI_CLIENT_SECRET"}
    with pytest.raises(SettingsError, match="missing: CUSTSEG_POWERBI_CLIENT_SECRET"):
        PowerBIServiceSettings.from_env(partial)


def _refresh_keys(monkeypatch, env: dict) -> tuple[set, dg.Definitions]:
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(Settings(workdir="/tmp/unused-workdir"))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    return keys, defs


def test_asset_is_absent_without_credentials(monkeypatch):
    keys, defs = _refresh_keys(monkeypatch, {})
    assert "powerbi_export" in keys and "powerbi_semantic_model_refresh" not in keys
    assert "powerbi_service" not in defs.resources


def test_asset_follows_the_export_and_refreshes_through_the_api(monkeypatch, fake):
    keys, defs = _refresh_keys(
        monkeypatch,
        ENV | {"CUSTSEG_POWERBI_API_URL": f"{fake.url}/v1.0/myorg", "CUSTSEG_POWERBI_AUTHORITY_URL": fake.url},
    )  # fmt: skip
    assert "powerbi_semantic_model_refresh" in keys
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("powerbi_semantic_model_refresh"))
    assert node.parent_keys == {dg.AssetKey("powerbi_export")}
    job = defs.resolve_job_def("full_pipeline")
    assert dg.AssetKey("powerbi_semantic_model_refresh") in job.asset_layer.executable_asset_keys
    # The resource the definitions configured: the secret stays an environment variable.
    settings = PowerBIServiceSettings.from_env()
    assert defs.resources["powerbi_service"] == PowerBIServiceResource.from_settings(settings)
    assert isinstance(defs.resources["powerbi_service"].client_secret, dg.EnvVar)
    fast = PowerBIServiceResource.from_settings(settings, poll_seconds=0.0)
    result = dg.materialize([powerbi_semantic_model_refresh], resources={"powerbi_service": fast})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["status"].value == "Completed" and metadata["request_id"].value == "req-1"
