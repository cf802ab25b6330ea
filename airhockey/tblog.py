"""TensorBoard event files in a run folder's ``tb/``, without torch, when the ``tensorboard`` extra is
installed; without it, a one-line note and nothing written.

Every stage writes its event files into ``RUN/tb/``: the agent through stable-baselines3's own logger
(``available`` decides whether it is turned on), the learning stages through ``TBLog``. Writing
draws no random numbers, so it leaves a seeded run's results as they are. Read the logs with
``tensorboard --logdir RUN/tb`` (or a folder above several runs).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

TB_DIR = "tb"
"""The folder of a run's TensorBoard event files."""
MISSING_NOTE = (
    "note: TensorBoard logs are off (the 'tensorboard' extra is not installed); "
    'pip install "airhockey[tensorboard]" to get them in each run\'s tb/ folder'
)


def available() -> bool:
    """Whether the ``tensorboard`` package can be imported (the ``tensorboard`` extra)."""
    return importlib.util.find_spec("tensorboard") is not None


@functools.cache
def note_missing() -> None:
    """Prints ``MISSING_NOTE`` to stderr, once per process."""
    print(MISSING_NOTE, file=sys.stderr)


class TBLog:
    """Scalars and images written to TensorBoard event files in one folder; a no-op without a folder.

    Args:
        folder: where to write (created if missing), or None to write nothing.
    """

    def __init__(self, folder: Path | None) -> None:
        self._writer: Any = None
        if folder is not None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self._writer = EventFileWriter(str(folder))

    @property
    def enabled(self) -> bool:
        """Whether anything is written."""
        return self._writer is not None

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Logs ``value`` under ``tag`` at ``step`` (a NaN is logged as NaN)."""
        if self._writer is None:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._write(Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]), step)

    def scalars(self, values: dict[str, Any], step: int, prefix: str = "") -> None:
        """Logs each number of ``values`` as ``prefix + name``; other values are left out."""
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.scalar(prefix + name, value, step)

    def image(self, tag: str, image: NDArray[np.uint8], step: int) -> None:
        """Logs an image (H, W, 3) uint8 under ``tag`` at ``step``, PNG-encoded."""
        if self._writer is None:
            return
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        height, width = image.shape[:2]
        encoded = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png.getvalue())
        self._write(Summary(value=[Summary.Value(tag=tag, image=encoded)]), step)

    def _write(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer.add_event(Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        """Writes what is queued to the event file."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TBLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def open_log(folder: Path) -> TBLog:
    """A ``TBLog`` writing into ``folder`` when the extra is installed; else a no-op one, after a
    one-line note (``note_missing``)."""
    if not available():
        note_missing()
        return TBLog(None)
    return TBLog(folder)
