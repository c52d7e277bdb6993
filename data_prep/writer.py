"""Atomic dataset writer: one uint8 .npy per resolution, streamed, renamed into place at the end.

Layout of a dataset directory (format version 1):

    manifest.json         source, settings, counts, resolutions, sha256 per file, skipped files
    names.json            source name of every kept image, in array order
    labels.npy            int64 [N] class index of every image (only with labels; names in manifest "classes")
    images_<R>.npy        uint8 [N, C, R, R] (CHW; C = 3 RGB, 1 grayscale or 4 RGBA, the manifest's
                          "channels") for each resolution R

Each array is appended image by image behind a fixed-size .npy header whose shape is filled in
when the count is known, so memory stays constant for millions of images. Everything is written
into a sibling `<out>.tmp-<host>-<pid>` directory and renamed to `<out>` only once complete: an
interrupted run leaves no `<out>` at all, a finished one leaves a whole dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
from pathlib import Path

import numpy as np

from .errors import DataPrepError, OutputExists

FORMAT_VERSION = 1
# 128 bytes = 64-byte aligned (numpy's own rule) and room for any [N, C, R, R] shape string.
_HEADER_BYTES = 128


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy v1.0 header for a C-ordered uint8 array, padded to exactly _HEADER_BYTES."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    text = text.ljust(_HEADER_BYTES - 10 - 1) + "\n"  # 10 = magic(6) + version(2) + length(2)
    header = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")
    assert len(header) == _HEADER_BYTES
    return header


def sha256_file(path: Path, *, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DatasetWriter:
    """Context manager: `add()` one image pyramid at a time, `commit()` once, or nothing remains.

    Args:
        out: final dataset directory; must not exist unless `overwrite`.
        resolutions: resolutions to store, each an `images_<R>.npy`.
        overwrite: replace an existing dataset at `out` (never a directory that is not one).
        channels: image channels per pixel (1, 3 or 4).
    """

    def __init__(self, out: Path, resolutions: list[int], *, overwrite: bool = False, channels: int = 3) -> None:
        self.out = Path(out).expanduser().absolute()
        self.resolutions = sorted(resolutions, reverse=True)
        self.overwrite = overwrite
        self.channels = channels
        self.count = 0
        self._tag = f"{socket.gethostname()}-{os.getpid()}"
        self.tmp = self.out.with_name(f"{self.out.name}.tmp-{self._tag}")
        self._files: dict[int, object] = {}
        self._committed = False

    def check_target(self) -> None:
        """Refuse early (before hours of work) if the output exists and may not be replaced."""
        if not self.out.exists():
            return
        if not self.overwrite:
            raise OutputExists(f"output exists: {self.out} (pass --overwrite to replace it)")
        is_dataset = (self.out / "manifest.json").is_file()
        if not self.out.is_dir() or not (is_dataset or not any(self.out.iterdir())):
            raise DataPrepError(f"refusing to overwrite {self.out}: not a data_prep dataset")

    def _remove_stale_tmp(self) -> None:
        # A killed run (SIGKILL, power loss) leaves its tmp dir; remove ours from dead processes on
        # this host only, since a live one on another node may share the filesystem.
        prefix = f"{self.out.name}.tmp-{socket.gethostname()}-"
        for sibling in self.out.parent.glob(f"{self.out.name}.tmp-*"):
            pid = sibling.name.removeprefix(prefix)
            if sibling.name.startswith(prefix) and pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(sibling, ignore_errors=True)

    def __enter__(self) -> "DatasetWriter":
        self.check_target()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        for resolution in self.resolutions:
            handle = open(self.tmp / f"images_{resolution}.npy", "wb")
            handle.write(npy_header((0, self.channels, resolution, resolution)))  # rewritten in commit()
            self._files[resolution] = handle
        return self

    def add(self, levels: dict[int, np.ndarray]) -> None:
        """Append one image: {R: contiguous uint8 [C, R, R]} for every stored resolution."""
        for resolution, handle in self._files.items():
            level = levels[resolution]
            assert level.dtype == np.uint8 and level.shape == (self.channels, resolution, resolution)
            handle.write(np.ascontiguousarray(level).data)
        self.count += 1

    def commit(self, manifest: dict, names: list[str], labels: list[int] | None = None) -> Path:
        """Finish the headers, write names (+ labels) + manifest with checksums, then rename into place."""
        assert len(names) == self.count and (labels is None or len(labels) == self.count)
        files = {}
        for resolution, handle in self._files.items():
            handle.seek(0)
            handle.write(npy_header((self.count, self.channels, resolution, resolution)))
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            path = self.tmp / f"images_{resolution}.npy"
            files[str(resolution)] = {"file": path.name, "dtype": "uint8",
                                      "shape": [self.count, self.channels, resolution, resolution],
                                      "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        self._files = {}
        names_text = json.dumps(names, ensure_ascii=False, indent=0)
        (self.tmp / "names.json").write_text(names_text + "\n", encoding="utf-8")
        files["names"] = {"file": "names.json", "sha256": sha256_file(self.tmp / "names.json")}
        if labels is not None:
            np.save(self.tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
            files["labels"] = {"file": "labels.npy", "dtype": "int64", "shape": [self.count],
                               "sha256": sha256_file(self.tmp / "labels.npy")}
        manifest = {"format": "gan-studio-dataset", "format_version": FORMAT_VERSION,
                    **manifest, "resolutions": self.resolutions, "channels": self.channels, "files": files}
        with open(self.tmp / "manifest.json", "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._rename_into_place()
        self._committed = True
        return self.out

    def _rename_into_place(self) -> None:
        old = None
        if self.out.exists():
            self.check_target()  # it may have appeared while we worked
            old = self.out.with_name(f"{self.out.name}.old-{self._tag}")
            os.rename(self.out, old)
        try:
            # rename(2) is atomic and fails if another process has put a dataset there meanwhile.
            os.rename(self.tmp, self.out)
        except OSError as error:
            if old is not None:
                os.rename(old, self.out)
            raise OutputExists(f"output appeared while writing: {self.out} ({error})") from None
        _fsync_dir(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        for handle in self._files.values():
            handle.close()
        if not self._committed:
            shutil.rmtree(self.tmp, ignore_errors=True)
