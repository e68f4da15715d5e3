"""A workdir can be copied or moved: nothing inside it points back at where it was made."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from data_quality import SUITES, validate
from tests.pipeline_utils import copy_workdir

GX_YML = Path("gx") / "great_expectations.yml"


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_copied_workdir_validated_there_writes_data_docs_into_the_copy_only(
    published_demo, tmp_path
):
    """A copy of a published workdir, validated the way the run's checks do it (the
    `marts` suite, Data Docs into WORKDIR/reports/data_docs): the copy's Data Docs and
    summaries change, the original's files do not. The copy's GE config first gets the
    absolute Data Docs path an older version wrote, which must be rewritten."""
    original = published_demo
    before = _tree(original)
    copy = copy_workdir(original, tmp_path / "moved" / "wd")
    yml = copy / GX_YML
    docs = copy / "reports" / "data_docs"
    old_docs = original / "reports" / "data_docs"
    text = re.sub(
        r"(custseg_data_docs:(?:\n .*)*?\n +base_directory: ).*",
        lambda m: m.group(1) + str(old_docs.resolve()),
        yml.read_text(encoding="utf-8"),
    )
    assert str(old_docs.resolve()) in text
    yml.write_text(text, encoding="utf-8")

    with duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True) as con:
        outcome = validate(con, SUITES["marts"](), copy, docs)

    assert outcome.passed
    assert Path(outcome.docs_index) == docs / "index.html"
    assert _tree(original) == before, "the copy wrote into the original workdir"
    # No absolute path left in the GE config or the summaries the report reads.
    config = yml.read_text(encoding="utf-8")
    assert str(original.resolve()) not in config and str(copy.resolve()) not in config
    bases = re.findall(r"base_directory: (.*)", config)
    assert bases and not any(Path(b).is_absolute() for b in bases), bases
    summary = json.loads((copy / "validation" / "marts.json").read_text(encoding="utf-8"))
    assert not Path(summary["docs_index"]).is_absolute()
    assert (copy / "validation" / summary["docs_index"]).resolve() == (docs / "index.html")
