"""The pure part of the paired end-to-end benchmark (benchmarks/paired.py, report.py).

The benchmark itself runs on demand (`make bench`); these check the numbers it reports:
medians per metric, ratios of medians, the median run, the child's own CPU and memory,
and the verdicts against issue 20's targets.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks import paired, report


def _run(wall, cpu=1.0, peak=100, e2e=None, load=(1.0, 1.0, 1.0)):
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "end_to_end_s": e2e,
        "load_average_before": list(load),
        "load_average_after": list(load),
    }


def test_ratio_is_of_the_medians_not_the_median_of_pair_ratios():
    pipeline = [_run(30, cpu=20, e2e=28), _run(10, cpu=12, e2e=9), _run(20, cpu=16, e2e=18)]
    script = [_run(3, cpu=2), _run(1, cpu=3), _run(4, cpu=4)]
    s = paired.summarize(pipeline, script)
    assert s["pipeline"] == {"wall_s": 20, "end_to_end_s": 18, "cpu_s": 16, "peak_rss_mb": 100}
    assert s["script"]["wall_s"] == 3 and s["script"]["cpu_s"] == 3
    assert "end_to_end_s" not in s["script"]  # the script has no in-process time
    assert s["ratio"] == {"wall": pytest.approx(6.67), "cpu": pytest.approx(5.33)}
    # each pair run back to back: 30/3, 10/1, 20/4; their median (10) is not the ratio
    assert s["pairs"] == [10.0, 10.0, 5.0]


def test_even_count_takes_the_lower_middle_run_and_no_script_has_no_ratio():
    runs = [_run(40, e2e=40), _run(10, e2e=10), _run(30, e2e=30), _run(20, e2e=20)]
    s = paired.summarize(runs, [])
    assert s["pipeline"]["wall_s"] == 20
    assert "ratio" not in s and "script" not in s
    assert paired.median_index(runs) == 3  # the run with 20 s: its stage table is shown


def test_run_child_measures_the_child_not_this_process():
    # about 0.3 s of CPU and 200 MB written by the child; this process stays as it is
    code = (
        "import time\nb = b'x' * (200 * 2**20)\nt = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\nraise SystemExit(3)"
    )
    ballast = b"y" * (700 * 2**20)  # this process is big: none of it is the child's
    r = paired.run_child([sys.executable, "-c", code])
    del ballast
    assert r["returncode"] == 3
    assert 0.3 <= r["cpu_s"] <= r["wall_s"] + 0.5
    assert 200 <= r["peak_rss_mb"] < 600


def _result(label, e2e, script_wall=None):
    pipeline = [_run(e2e + 3, cpu=e2e, peak=900, e2e=e2e)]
    scripts = []
    if script_wall is not None:
        out = {"customers": 5, "bgnbd": {"r": 0.25}, "gamma_gamma": {"p": 6.0}}
        scripts = [{**_run(script_wall, cpu=script_wall, peak=280), "output": out}]
    r = {
        "label": label,
        "rows": 10,
        "customers": 5,
        "date": "2026-12-01T00:00:00",
        "commit": "abc",
        "machine": "test",
        "config": "examples/cdnow.yaml",
        "load_average_before": [1.0, 1.0, 1.0],
        "load_average_after": [1.0, 1.0, 1.0],
        "stages": [],
        "steps": {},
        "end_to_end_s": e2e,
        "cpu_s": e2e,
        "peak_rss_mb": 900,
        "dbt_tests_s": 0.0,
        "median_run": 1,
        "runs": pipeline,
        "summary": paired.summarize(pipeline, scripts),
    }
    if scripts:
        r["user_script"] = {"script": "benchmarks/user_script.py", "runs": scripts}
    return r


def test_markdown_verdicts_follow_the_issue_targets():
    slow = report.e2e_markdown(_result("cdnow", 73.0, script_wall=5.0))
    assert "end to end <= 20 s: **missed** (73.0 s)" in slow
    assert "within 10x of the script: **missed** (15.2x)" in slow  # (73 + 3) / 5
    fast = report.e2e_markdown(_result("cdnow", 17.0, script_wall=5.0))
    assert "end to end <= 20 s: **met** (17.0 s)" in fast
    assert "within 10x of the script: **met** (4.0x)" in fast
    demo = report.e2e_markdown(_result("demo", 31.0))
    assert "end to end <= 30 s: **missed** (31.0 s)" in demo
    assert "of the script" not in demo
    retail = report.e2e_markdown(_result("online_retail", 50.0))
    assert "Targets" not in retail and "## Runs (1" in retail


def test_the_stage_meter_times_overlapping_steps_and_the_time_outside_all_steps():
    from benchmarks import stages

    timings: dict[str, float] = {}
    clock = iter([0.0, 1.0, 3.0, 4.0, 6.0, 7.0])  # ▶ seg, ▶ val, ✓ seg, ✓ val, ▶ mart, ✓ mart
    meter = stages.StageMeter(timings, clock=lambda: next(clock))
    meter.write("▶ segmentation refit ...\n")
    meter.write("▶ CLV and churn model refit ...\n")
    timings["segmentation_model"] = 3.0
    meter.write("✓ segmentation refit (3.0 s)\n")
    timings["value_models"] = 3.0
    meter.write("✓ CLV and churn model refit (3.0 s)\n")
    meter.write("▶ dbt marts (with tests) ...\n")
    meter.write("✗ dbt marts (with tests) failed after 1.0 s\n")
    assert set(meter.cpu_s) == {
        "segmentation_model",
        "value_models",
        "✗ dbt marts (with tests) failed after 1.0 s",
    }
    assert meter.busy_s() == pytest.approx(5.0)  # 0-4 and 6-7, not 3 + 3 + 1
    rows = stages.stage_table(timings, meter.cpu_s, meter.peak_rss, 10.0, meter.busy_s())
    assert rows[-1]["stage"] == stages.OVERHEAD and rows[-1]["wall_s"] == pytest.approx(5.0)


def test_the_tree_memory_counts_a_child_and_lists_children_only_every_few_calls():
    import psutil

    from benchmarks import stages

    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(300 * 2**20); print('ready', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        rss = stages.TreeRss(relist=3)
        assert rss() > psutil.Process().memory_info().rss + 250 * 2**20
        listed = []
        rss.me = _Counting(rss.me, listed)
        for _ in range(6):
            rss()
        assert len(listed) == 2  # calls 4 and 7 of the meter: every third
    finally:
        child.kill()
        child.wait()


class _Counting:
    """A psutil.Process that records each listing of its children."""

    def __init__(self, process, calls: list):
        self.process, self.calls = process, calls

    def children(self, **kwargs):
        self.calls.append(kwargs)
        return self.process.children(**kwargs)

    def memory_info(self):
        return self.process.memory_info()
