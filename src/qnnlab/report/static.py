"""Static PNG/PDF versions of the main figures, for papers, drawn offline by kaleido.

kaleido ≥ 1 renders plotly figures in a headless Chrome or Chromium that it finds on the
machine (Debian: ``apt-get install chromium``); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import plotly.io as pio

from qnnlab.report.data import Comparison
from qnnlab.report.figures import STATIC_FIGURES, WIDTH, build_figures, static_version

__all__ = ["FORMATS", "write_static"]

FORMATS = ("png", "pdf")


def write_static(c: Comparison, out_dir: str | Path, fmt: str, *, band: str = "se") -> list[Path]:
    """Write ``out_dir/<figure>.<fmt>`` for each of :data:`STATIC_FIGURES` that has data; returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from: {', '.join(FORMATS)}")
    try:
        from choreographer.errors import ChromeNotFoundError
    except ModuleNotFoundError:
        raise ModuleNotFoundError("static figures need kaleido >= 1: pip install 'qnnlab[report]'") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {k: static_version(f) for k, f in build_figures(c, STATIC_FIGURES, band=band).items()}
    if not figures:
        return []
    paths = [out_dir / f"{key}.{fmt}" for key in figures]
    try:
        pio.write_images(
            list(figures.values()),
            paths,
            format=fmt,
            width=WIDTH,
            height=[f.layout.height for f in figures.values()],
            scale=2 if fmt == "png" else 1,
        )
    except ChromeNotFoundError:
        raise RuntimeError(
            "static figures need Chrome or Chromium on this machine (Debian: apt-get install chromium)"
        ) from None
    return paths
