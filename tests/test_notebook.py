"""notebooks/exploration.ipynb: runs top to bottom on a published demo, read-only, and is committed clean."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from tests.pipeline_utils import query

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "exploration.ipynb"
# The acceptance: the whole notebook, kernel start included, well under 3 minutes.
MAX_SECONDS = 180
# One figure per plot cell; the demo has data for every one of them.
MIN_FIGURES = 16
FIGURE_TYPES = {"image/png", "image/svg+xml"}


def _fingerprint(path: Path) -> tuple[int, int, str]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_notebook_is_committed_without_outputs():
    raw = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.reads(json.dumps(raw), as_version=4))
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    dirty = [c.get("id") for c in code if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, (
        f"cells {dirty} hold outputs or execution counts: clear them before committing "
        "(Jupyter: Edit > Clear All Outputs; VS Code: Clear All Outputs)"
    )
    assert raw["metadata"]["kernelspec"]["name"] == "python3"


def test_python3_kernel_is_the_venvs():
    """nbclient starts the kernel spec ``python3``; it must run this interpreter (with duckdb & co)."""
    manager = KernelSpecManager()
    assert "python3" in manager.find_kernel_specs(), (
        f"no python3 kernel spec found (looked in {manager.kernel_dirs}); "
        "install ipykernel into this environment"
    )
    argv0 = manager.get_kernel_spec("python3").argv[0]
    # jupyter_client replaces a bare "python" / "python3" / "python3.X" by sys.executable.
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    assert argv0 in bare or Path(argv0).resolve() == Path(sys.executable).resolve(), (
        f"the python3 kernel runs {argv0}, not {sys.executable}"
    )


@pytest.mark.slow
def test_notebook_runs_on_the_demo(published_demo, monkeypatch):
    # The kernel inherits this process's environment.
    monkeypatch.setenv("CUSTSEG_WORKDIR", str(published_demo))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Appended to the in-memory copy only: which interpreter the kernel really is.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel prefix:', sys.prefix)"))
    warehouse = published_demo / "warehouse.duckdb"
    warehouse_before = _fingerprint(warehouse)
    notebook_dir_before = _files_under(NOTEBOOK.parent)

    client = NotebookClient(
        nb,
        timeout=MAX_SECONDS,
        kernel_name="python3",
        allow_errors=True,  # collect every error below instead of stopping at the first
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start

    errors = [
        f"cell {cell.get('id')}: {out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors, "the notebook raised:\n" + "\n".join(errors)
    assert elapsed < MAX_SECONDS, f"the notebook took {elapsed:.1f} s (limit {MAX_SECONDS} s)"

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    figures = sum(1 for out in outputs if FIGURE_TYPES & set(out.get("data", {})))
    assert figures >= MIN_FIGURES, f"{figures} figures drawn, expected at least {MIN_FIGURES}"

    text = "".join(out.text for out in outputs if out.output_type == "stream")
    shown = re.search(r"customers in marts\.dim_customer: ([\d,]+)", text)
    assert shown, f"the customer count is not printed:\n{text[:2000]}"
    (customers,) = query(published_demo, "select count(*) from marts.dim_customer")[0]
    assert int(shown.group(1).replace(",", "")) == customers

    prefix = re.search(r"kernel prefix: (.+)", text)
    assert prefix and Path(prefix.group(1).strip()).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran another Python ({prefix and prefix.group(1)}), not {sys.prefix}"
    )

    # Read-only: the warehouse is untouched and no write-ahead log appeared.
    assert _fingerprint(warehouse) == warehouse_before
    assert not warehouse.with_name(warehouse.name + ".wal").exists()
    # Nothing left behind next to the notebook (checkpoints, saved copies, data files).
    assert _files_under(NOTEBOOK.parent) == notebook_dir_before
    assert not (REPO / ".ipynb_checkpoints").exists()
