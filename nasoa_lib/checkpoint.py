"""Per-epoch checkpoints of a training loop in the artifact store, so a killed run resumes.

One checkpoint file holds the ``state_dict`` of each named stateful object (networks, optimizers,
distributions), the number of finished epochs and the per-epoch history. Writes are atomic
(:meth:`~nasoa_lib.store.ArtifactStore.save_torch`), so a kill leaves the previous epoch's file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from nasoa_lib.store import ArtifactStore

CHECKPOINT_FILE = "checkpoint.pt"


class Stateful(Protocol):
    """What a checkpoint saves and restores: a network, an optimizer, a scheduler, a distribution."""

    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> Any: ...


def save_checkpoint(store: ArtifactStore, kind: str, key: str, epoch: int, history: list, **stateful: Stateful | None) -> dict:
    """Write ``{name: obj.state_dict()} + epoch + history`` (a ``None`` object is stored as ``None``)."""
    state = {name: None if obj is None else obj.state_dict() for name, obj in stateful.items()}
    state.update(epoch=int(epoch), history=list(history))
    store.save_torch(kind, key, CHECKPOINT_FILE, state)
    return state


def load_checkpoint(store: ArtifactStore, kind: str, key: str) -> dict | None:
    """The raw checkpoint of ``(kind, key)``, or ``None`` when no epoch has finished yet."""
    if not store.artifact_exists(kind, key, CHECKPOINT_FILE):
        return None
    return store.load_torch(kind, key, CHECKPOINT_FILE)


def restore(state: dict, **stateful: Stateful | None) -> tuple[int, list]:
    """Load each named object's saved ``state_dict`` (skipping ones saved as ``None``); returns
    ``(finished epochs, history)``."""
    for name, obj in stateful.items():
        if obj is not None and state.get(name) is not None:
            obj.load_state_dict(state[name])
    return int(state["epoch"]), list(state["history"])


def resume(store: ArtifactStore, kind: str, key: str, **stateful: Stateful | None) -> tuple[int, list]:
    """Restore the objects from the last checkpoint of ``(kind, key)``: ``(0, [])`` when there is none."""
    state = load_checkpoint(store, kind, key)
    return (0, []) if state is None else restore(state, **stateful)
