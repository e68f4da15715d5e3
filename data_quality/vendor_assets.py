"""Fetch the Data Docs' browser assets from the npm registry into ``docs_assets/``.

A maintainer's tool, not part of a run (the files are committed, so Data Docs work
offline from a fresh clone): ``python -m data_quality.vendor_assets`` packs each package
of :data:`data_quality.offline_docs.ASSETS` with ``npm pack`` (npm's own client, which
checks the registry's integrity hash), copies the files the pages load, and writes
``docs_assets/VENDOR.json``: package, version, license, the tarball's integrity and the
SHA-256 of every file (tests/test_offline_docs.py checks the files against it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from data_quality.offline_docs import ASSETS, ASSETS_DIR

LOCK = ASSETS_DIR / "VENDOR.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    packages: dict[tuple[str, str], set[str]] = {}
    for asset in ASSETS:
        packages.setdefault((asset.package, asset.version), set()).update(
            (asset.file, *asset.extra)
        )
    shutil.rmtree(ASSETS_DIR, ignore_errors=True)
    ASSETS_DIR.mkdir()
    lock = []
    with tempfile.TemporaryDirectory(prefix="custseg-npm-") as tmp:
        for (package, version), files in sorted(packages.items()):
            out = subprocess.run(
                ["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            (info,) = json.loads(out.stdout)
            folder = ASSETS_DIR / f"{package.rsplit('/', 1)[-1]}-{version}"
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                meta = json.load(tar.extractfile("package/package.json"))
                # The package's licence text, where it ships one (the minified files keep
                # their own notice at the top).
                licences = [n for n in tar.getnames() if n.count("/") == 1 and "LICEN" in n.upper()]
                for name in licences:
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / Path(name).name).write_bytes(tar.extractfile(name).read())
                for name in sorted(files):
                    dest = folder / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(tar.extractfile(f"package/{name}").read())
            lock.append(
                {
                    "package": package,
                    "version": version,
                    "license": meta.get("license"),
                    "integrity": info["integrity"],
                    "files": {name: sha256(folder / name) for name in sorted(files)},
                }
            )
            print(f"{package}@{version}: {len(files)} file(s)")
    LOCK.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
