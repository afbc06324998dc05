"""The table of a chaos run, and its place in docs/reliability.md."""

from __future__ import annotations

import datetime
from pathlib import Path

from chaos.harness import Row

BEGIN = "<!-- chaos:results:begin (written by `make chaos`; edit outside these markers) -->"
END = "<!-- chaos:results:end -->"


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | jobs | faults | lost | duplicated | over quota | time to recover | verdict "
        "| notes |",
        "|---|---:|---|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.jobs:,} | {row.faults} | {row.lost} | {row.duplicated} | "
            f"{row.over_quota} | {row.recover} | {'ok' if row.passed else '**failed**'} | "
            f"{row.notes} |"
        )
    return "\n".join(lines)


def write_docs(path: Path, rendered: str, minutes: float, command: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    block = (
        f"{BEGIN}\nRun {stamp} ({minutes:.0f} min), `python -m chaos {command}`.\n\n"
        f"{rendered}\n{END}"
    )
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
