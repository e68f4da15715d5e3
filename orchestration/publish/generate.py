"""Write (or check) the files generated from the dbt descriptions.

    python -m orchestration.publish.generate            # write them
    python -m orchestration.publish.generate --check    # exit 1 when one is out of date
    python -m orchestration.publish.generate --config my_shop.yaml   # money in its currency

Generated: the Power BI model's tables, relationships and table list
(``powerbi/CustomerSegmentation.SemanticModel/definition/``) and ``docs/glossary.md``.
Inputs: the parsed dbt manifest (``custseg parse``; parsed here when missing or older than
the project), ``orchestration/publish/powerbi/model.yml`` and the project config's currency
(the defaults of ``orchestration/io/config.py`` without ``--config``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.io.config import CurrencyConfig, project_currency
from orchestration.publish.descriptions import from_manifest
from orchestration.publish.glossary import glossary
from orchestration.publish.powerbi.build import build, render

REPO = Path(__file__).resolve().parents[2]
SEMANTIC_MODEL = Path("powerbi") / "CustomerSegmentation.SemanticModel"
GLOSSARY = Path("docs") / "glossary.md"


def generated_files(
    manifest: str | Path, currency: CurrencyConfig | None = None
) -> dict[Path, str]:
    """Every generated file's text, by path relative to the repository."""
    docs = from_manifest(manifest)
    model = build(docs, currency or CurrencyConfig())
    files = {SEMANTIC_MODEL / path: text for path, text in render(model).items()}
    files[GLOSSARY] = glossary(docs, model)
    return files


def stale_files(files: dict[Path, str], root: Path = REPO) -> list[Path]:
    """The files whose committed text differs from the generated one (or that are missing)."""
    stale = []
    for path, text in files.items():
        target = root / path
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m orchestration.publish.generate",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when stale")
    p.add_argument("--config", help="project config whose currency formats money")
    p.add_argument("--manifest", help="dbt manifest (default: parse the project if needed)")
    args = p.parse_args(argv)
    if args.manifest:
        manifest = Path(args.manifest)
    else:
        from orchestration.dbt import ensure_manifest

        manifest = ensure_manifest()
    files = generated_files(manifest, project_currency(args.config))
    stale = stale_files(files)
    if args.check:
        for path in stale:
            print(f"out of date: {path.as_posix()}", file=sys.stderr)
        if stale:
            print("run: python -m orchestration.publish.generate", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        (REPO / path).parent.mkdir(parents=True, exist_ok=True)
        (REPO / path).write_text(files[path], encoding="utf-8", newline="\n")
        print(f"wrote {path.as_posix()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
