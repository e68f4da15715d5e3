"""Headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``), so a
test can ask a page what a user would see: computed styles, rows drawn by JavaScript,
loaded fonts. ``offline=True`` starts it in a network namespace of its own (``unshare
-rn``): no interface but a loopback that is down, so any request off the machine fails.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.test_report import CHROMIUM, CHROMIUM_FLAGS


class Page:
    """One page opened in a fresh headless Chromium; use as a context manager."""

    def __init__(self, url: str, offline: bool = True, timeout: float = 60.0) -> None:
        if not CHROMIUM.exists():
            pytest.fail(f"{CHROMIUM} not found: install the Debian/Ubuntu package `chromium`")
        if offline:
            probe = ["unshare", "--map-root-user", "--net", "true"]
            if shutil.which("unshare") is None or subprocess.run(probe).returncode != 0:
                pytest.fail(
                    "Chromium runs without a network in a namespace of its own: this needs "
                    "`unshare` (util-linux) and unprivileged user namespaces "
                    "(sysctl kernel.unprivileged_userns_clone=1)"
                )
        self.url, self.offline, self.timeout = url, offline, timeout

    def __enter__(self) -> Page:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_chrome, self._to = os.pipe()
        self._from, from_chrome = os.pipe()

        def pipes_on_3_and_4():  # where --remote-debugging-pipe expects them
            r, w = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(r, 3)
            os.dup2(w, 4)

        cmd = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}"]
        cmd += ["--remote-debugging-pipe", "about:blank"]
        if self.offline:
            cmd = ["unshare", "--map-root-user", "--net", *cmd]
        self._proc = subprocess.Popen(
            cmd,
            preexec_fn=pipes_on_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._id = b"", 0
        target = next(
            t for t in self._send("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        self._session = self._send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )["sessionId"]
        self._send("Page.navigate", self._session, url=self.url)
        deadline = time.monotonic() + self.timeout
        while (
            self.eval("document.readyState") != "complete" or self.eval("location.href") != self.url
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url} did not load in {self.timeout:.0f} s")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self._proc.kill()
        self._proc.wait()
        for fd in (self._to, self._from):
            os.close(fd)
        self._profile.cleanup()

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self._send(
            "Runtime.evaluate",
            self._session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def _send(self, method: str, session: str | None = None, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._from], [], [], self.timeout)[0]:
                raise TimeoutError(f"Chromium did not answer in {self.timeout:.0f} s")
            chunk = os.read(self._from, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)
