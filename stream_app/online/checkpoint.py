"""The learner's checkpoint: its whole state in one local file, replaced atomically.

The file holds the River model (River has no other complete serialisation than pickle), the
waiting vectors and labels, the statistics and the next offset of every input partition: the
offsets live with the state they produced, so a restart resumes exactly at the cut. Pickle is
read only from this local file, which the learner itself wrote; never from the network.
"""

from __future__ import annotations

import contextlib
import logging
import pickle  # a local file this process wrote, see the module docstring
from pathlib import Path

from stream_app.online.learner import LearnerState

log = logging.getLogger(__name__)

FILE_NAME = "learner.pickle"


def save_state(state: LearnerState, directory: Path) -> None:
    """Write ``state`` to ``directory`` (a crash mid-write leaves the previous checkpoint; a write
    that fails, a full disk, raises :class:`OSError` and leaves it too)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    partial = path.with_suffix(".partial")
    try:
        partial.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):  # what it holds of the state frees the disk
            partial.unlink(missing_ok=True)
        raise


def load_state(directory: Path) -> LearnerState | None:
    """The state saved in ``directory``; ``None`` if there is none, or if it cannot be read
    (corrupt, truncated, of an older code): that file is renamed ``learner.pickle.unreadable``
    (replacing an older one) and logged, and the learner starts afresh, from the beginning of its
    topics, rather than fail at every start."""
    path = directory / FILE_NAME
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())  # noqa: S301  # local, written by save_state
        if not isinstance(state, LearnerState):
            raise TypeError(f"it holds a {type(state).__name__}, not a learner's state")
    except Exception as exc:  # unpickling may raise any error, whatever the file holds
        log.error("online learner checkpoint %s cannot be read (%s: %s): %s, starting afresh",
                  path, type(exc).__name__, exc, _set_aside(path))  # fmt: skip
        return None
    return state


def _set_aside(path: Path) -> str:
    """Rename ``path`` to ``<name>.unreadable``; say where it is."""
    aside = path.with_name(f"{path.name}.unreadable")
    try:
        path.replace(aside)
    except OSError as exc:
        return f"left in place ({exc})"
    return f"set aside as {aside}"
