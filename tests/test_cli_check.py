"""``custseg check``: the real command on CDNOW and on broken configs (output, exit status,
time, nothing written), and the help texts of every command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def custseg(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for name in [k for k in env if k.startswith("CUSTSEG_")]:
        del env[name]
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out, time.perf_counter() - t0


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def shop(tmp_path) -> Path:
    """12 good customers, and three rows the ingest quarantines for three reasons."""
    rows = [f"C{i},2024-01-{i + 1:02d},{10 + i}.50" for i in range(1, 13)]
    rows += [",2024-01-20,3", "C1,not a date,4", "C2,2024-01-21,abc"]
    write(tmp_path, "tx.csv", "cust,when,total\n" + "\n".join(rows) + "\n")
    columns = "  columns:\n    customer_id: cust\n    ordered_at: when\n    amount: total\n"
    write(tmp_path, "shop.yaml", f"data_root: .\ntransactions:\n  path: tx.csv\n{columns}")
    return tmp_path


def test_check_on_cdnow_reports_the_delivery_in_seconds(shared_data, tmp_path):
    out, took = custseg("check", "--config", str(REPO / "examples" / "cdnow.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "69,659 rows read: 69,659 would load, 0 quarantined" in text
    assert "customer_id <- 'customer_id', ordered_at <- 'date'" in text
    assert "amount <- 'dollar_value'" in text
    assert "derived: order_id = customer_id and the day" in text
    assert "first 3 row(s) as a run would load them" in text and "00001-19970101" in text
    assert "Transactions from 1997-01-01 to 1998-06-30." in text
    assert "As of 1998-07-01 (the day after the last transaction): 23,570 customers" in text
    assert "OK (" in text and "would load these sources" in text
    assert took < 5, f"custseg check took {took:.1f} s on CDNOW"
    assert list(tmp_path.iterdir()) == []  # nothing written (no workdir, no warehouse)


def test_check_lists_what_would_be_quarantined_and_why(shop):
    out, _ = custseg("check", "--config", "shop.yaml", "--rows", "2", cwd=shop)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "15 rows read: 12 would load, 3 quarantined" in text
    for rule, row in [
        ("missing customer_id (cust)", 13),
        ("unparseable date ordered_at (when)", 14),
        ("non-numeric amount (total)", 15),
    ]:
        assert f"1  {rule}  (first: {shop / 'tx.csv'}, row {row})" in text
    assert "first 2 row(s)" in text
    assert "12 customers" in text
    assert sorted(p.name for p in shop.iterdir()) == ["shop.yaml", "tx.csv"]


def test_check_exits_1_where_a_run_would_stop(shop):
    write(shop, "wrong.yaml", (shop / "shop.yaml").read_text().replace("cust\n", "customer\n"))
    out, _ = custseg("check", "--config", "wrong.yaml", cwd=shop)
    assert out.returncode == 1
    assert "tx.csv: required column not found: 'customer'" in out.stderr
    assert "A run would stop here" in out.stdout

    out, _ = custseg("check", "--config", "shop.yaml", "--as-of", "2030-01-01", cwd=shop)
    assert out.returncode == 1
    assert "custseg: error: the as-of date 2030-01-01" in out.stderr
    assert "use an as-of date from 2024-01-03 to 2024-01-14" in out.stderr


def test_check_exits_2_on_an_invalid_config(shop):
    write(shop, "typo.yaml", "data_root: .\ntransactions:\n  path: tx.csv\n  colums: {}\n")
    out, _ = custseg("check", "--config", "typo.yaml", cwd=shop)
    assert out.returncode == 2
    assert "typo.yaml: transactions.colums: Extra inputs are not permitted" in out.stderr
    out, _ = custseg("check", "--config", "missing.yaml", cwd=shop)
    assert out.returncode == 2
    assert "config file not found:" in out.stderr and "missing.yaml" in out.stderr


def test_every_command_has_help_with_defaults_and_examples(capsys):
    texts = {}
    for name in ["", "run", "check", "report", "generate", "parse"]:
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([name, "--help"] if name else ["--help"])
        assert done.value.code == 0
        texts[name or "custseg"] = capsys.readouterr().out
    for name, text in texts.items():
        assert "`" not in text, f"{name}: raw reStructuredText/Markdown quotes in the help"
        if name != "parse":
            assert "example" in text, f"{name}: no examples"
    assert "--workdir DIR" in texts["run"] and "(default: .custseg)" in texts["run"]
    assert "(default: 20000)" in texts["generate"] and "(default: 42)" in texts["generate"]
    assert "(default: 3)" in texts["check"] and "exit status" in texts["check"]
