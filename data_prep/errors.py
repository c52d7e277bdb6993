"""The two exceptions of data_prep: one for the user, one for a single skipped image.

`DataPrepError` is a mistake the user can fix (missing source, bad resolution, output exists); the
CLI prints it as one line. `SkipImage` never escapes a run: it carries a short stable reason code
that ends up in the manifest next to the file name.
"""

from __future__ import annotations

# Stable reason codes written to manifest.json; tests and users can rely on these strings.
REASONS = (
    "empty",        # zero-byte file
    "unreadable",   # the bytes could not be read (permissions, dangling link, bad archive member)
    "not_image",    # no decoder recognised the bytes (HTML saved as .jpg, text, ...)
    "corrupt",      # recognised but failed to decode (truncated JPEG, bad PNG CRC, ...)
    "unsupported",  # decoded but in a pixel mode we cannot turn into RGB
    "too_small",    # smaller than the target resolution and upscaling was not asked for
    "too_large",    # beyond the decompression-bomb pixel limit
    "too_many_bytes",  # the file or archive member is bigger than max_bytes (zip bomb, multi-GB member)
    "no_label",     # labels were asked for (data_prep --labels) and this image has no class
)


class DataPrepError(ValueError):
    """A user-facing error with a one-line message (missing/empty source, bad option, ...)."""


class SkipImage(Exception):
    """One input is skipped; `reason` is one of REASONS, `detail` is free text for humans."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class OutputExists(DataPrepError):
    """The output directory exists (or appeared while we were writing) and overwrite is off."""
