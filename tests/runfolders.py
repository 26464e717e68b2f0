"""Making run folders others handed over: a copy of a run (without its lock) and an edited config."""

import shutil
from pathlib import Path

import yaml


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for path in run.iterdir():
        if path.is_file() and path.name != ".lock":
            shutil.copy2(path, to / path.name)
    return to


def edit_config(run: Path, **changes) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, **changes}, sort_keys=False))
