"""The learner's checkpoint: its whole state in one local file, replaced atomically.

The file holds the River model (River has no other complete serialisation than pickle), the
waiting vectors and labels, the statistics and the next offset of every input partition: the
offsets live with the state they produced, so a restart resumes exactly at the cut. Pickle is
read only from this local file, which the learner itself wrote; never from the network.
"""

from __future__ import annotations

import logging
import pickle  # a local file this process wrote, see the module docstring
from pathlib import Path

from stream_app.errors import ModelError
from stream_app.online.learner import LearnerState

log = logging.getLogger(__name__)

FILE_NAME = "learner.pickle"


def save_state(state: LearnerState, directory: Path) -> None:
    """Write ``state`` to ``directory`` (a crash mid-write leaves the previous checkpoint)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    partial = path.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)


def load_state(directory: Path) -> LearnerState | None:
    """The state saved in ``directory``; ``None`` if there is none."""
    path = directory / FILE_NAME
    if not path.exists():
        return None
    state = pickle.loads(path.read_bytes())  # noqa: S301  # local, written by save_state
    if not isinstance(state, LearnerState):
        raise ModelError(f"{path}: not an online learner checkpoint")
    return state
