"""A replayed fine-tuning benchmark: the grid the searches choose from, run once, as a table.

HPOBench / syne-tune's idea at our scale: an expensive grid of runs becomes a table
``(model, lr, frozen stages, epochs, seed) -> (validation accuracy, test accuracy, seconds)``
that any optimiser replays on a simulated clock, so NASOA Table 4's searches can be repeated with
many seeds for the price of one grid.

**How a table is made** (notebook 07, :mod:`nasoa_lib.studies.nasoa_vs_hpo`). The learning rate is
constant (:data:`nasoa_lib.run_length.SCHEDULE`), so the state of a run after ``e`` epochs *is* the
run of ``e`` epochs (same seed, same batch order). One checkpointed run per (model, lr, frozen
stages, seed), as long as the longest feasible run of that (model, frozen stages) under the
replayed time constraints, evaluated after each ladder epoch count
(:func:`nasoa_lib.run_length.checkpoint_steps`), gives every shorter cell of the grid.

**What a cell is charged** (:func:`cells_from_run`): what running that regime alone would have
cost, from the checkpointed run's measurements: the run's fixed cost (its wall-clock minus
training and evaluation: copying the network, tensors), plus the checkpoint's training seconds
(cumulative, the frozen-prefix cache included), plus one evaluation of the validation and test
images (the run's evaluation seconds divided by its number of evaluations; a cached run's first
evaluation also builds the test images' prefix, so this share slightly under-charges the
shortest cells of frozen runs: notebook 07's live spot-check measures the difference).

**How a search reads it** (:meth:`ReplayTable.observer`): each trial is answered by one of the
cell's seeds, drawn by the search's own generator, with that run's validation accuracy and
seconds; the chosen trial's *test* accuracy is read afterwards from the same run
(:meth:`ReplayTable.test_accuracy`), so a search reports the model it would have trained, and
never sees a test accuracy while it searches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidSearchSetup, StoreCorruptedError
from nasoa_lib.hpo.search import Observation, Observe
from nasoa_lib.hpo.space import SearchSpace, Trial

if TYPE_CHECKING:
    from nasoa_lib.finetune import Checkpoint

CONFIG_COLUMNS = ("model", "lr", "frozen_stages", "epochs")
COLUMNS = (*CONFIG_COLUMNS, "seed", "iterations", "validation_accuracy", "test_accuracy", "seconds",
           "train_seconds")


@dataclass(frozen=True)
class CheckpointedRun:
    """One run of the table: a configuration and seed, evaluated after each of ``epochs`` (the
    ladder's values up to the longest feasible run), which are ``iterations`` optimizer steps."""

    model: str
    lr: float
    frozen_stages: int
    seed: int
    epochs: tuple[int, ...]
    iterations: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.epochs or len(self.epochs) != len(self.iterations) or list(self.iterations) != sorted(
                set(self.iterations)):
            raise InvalidSearchSetup(f"checkpointed run {self.model} epochs={self.epochs} iterations={self.iterations}",
                                     hint="give ascending, distinct checkpoints, one iteration count per epoch count")

    @property
    def longest(self) -> int:
        return self.iterations[-1]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epochs": list(self.epochs), "iterations": list(self.iterations)}


def plan_runs(spaces: Iterable[SearchSpace], seeds: Sequence[int]) -> list[CheckpointedRun]:
    """The checkpointed runs that cover every cell of ``spaces`` (one task's search spaces under
    the replayed constraints) for each seed: per (model, lr, frozen stages), the union of the
    spaces' epochs, run once to the longest."""
    cells: dict[tuple[str, float, int], dict[int, int]] = {}
    for space in spaces:
        for trial in space.grid():
            cells.setdefault((trial.model, trial.lr, trial.frozen_stages), {})[trial.epochs] = space.iterations_of(trial)
    runs = []
    for (model, lr, k), by_epochs in sorted(cells.items()):
        epochs = tuple(sorted(by_epochs))
        for seed in seeds:
            runs.append(CheckpointedRun(model, lr, k, int(seed), epochs, tuple(by_epochs[e] for e in epochs)))
    return runs


def cells_from_run(run: CheckpointedRun, checkpoints: Sequence[Checkpoint], wall_seconds: float,
                   train_seconds: float, eval_seconds: float) -> list[dict[str, Any]]:
    """The table rows of one checkpointed run (module docstring: what a cell is charged)."""
    by_step = {int(c.step): c for c in checkpoints}
    missing = [i for i in run.iterations if i not in by_step]
    if missing:
        raise InvalidSearchSetup(f"the run of {run.model} (lr {run.lr:g}, {run.frozen_stages} frozen, seed {run.seed}) "
                                 f"has no checkpoint at step(s) {missing}",
                                 hint="fine-tune with eval_steps=run.iterations (a time limit must not cut it short)")
    fixed = max(0.0, float(wall_seconds) - float(train_seconds) - float(eval_seconds))
    share = float(eval_seconds) / max(1, len(checkpoints))
    rows = []
    for e, i in zip(run.epochs, run.iterations):
        c = by_step[i]
        rows.append({"model": run.model, "lr": float(run.lr), "frozen_stages": int(run.frozen_stages), "epochs": int(e),
                     "seed": int(run.seed), "iterations": int(i),
                     "validation_accuracy": float(c.validation_accuracy), "test_accuracy": float(c.test_accuracy),
                     "seconds": fixed + float(c.train_seconds) + share, "train_seconds": float(c.train_seconds)})
    return rows


class ReplayTable:
    """Cells ``(model, lr, frozen stages, epochs)`` with one row per seed (:data:`COLUMNS`)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise StoreCorruptedError(f"a replay table needs the columns {list(COLUMNS)}; {missing} are missing",
                                      hint="rebuild it (notebook 07's table stage) or read a file written by to_csv")
        frame = frame[list(COLUMNS)].copy()
        frame["lr"] = frame["lr"].astype(float)
        for c in ("frozen_stages", "epochs", "seed", "iterations"):
            frame[c] = frame[c].astype(int)
        if frame.duplicated(list(CONFIG_COLUMNS) + ["seed"]).any():
            raise StoreCorruptedError("the replay table holds a (config, seed) twice",
                                      hint="each checkpointed run adds its cells once; rebuild the table")
        self.frame = frame.sort_values([*CONFIG_COLUMNS, "seed"]).reset_index(drop=True)
        self._cells: dict[Trial, pd.DataFrame] = {
            Trial(str(m), float(lr), int(k), int(e)): part
            for (m, lr, k, e), part in self.frame.groupby(list(CONFIG_COLUMNS), sort=False)}

    def __len__(self) -> int:
        return len(self._cells)

    def __contains__(self, trial: Trial) -> bool:
        return trial in self._cells

    def _cell(self, trial: Trial) -> pd.DataFrame:
        try:
            return self._cells[trial]
        except KeyError:
            raise InvalidSearchSetup(f"the replay table has no cell {trial}",
                                     hint="build the table for every search space it replays (plan_runs)") from None

    def seeds(self, trial: Trial) -> tuple[int, ...]:
        return tuple(int(s) for s in self._cell(trial).seed)

    def row(self, trial: Trial, seed: int) -> pd.Series:
        part = self._cell(trial)
        match = part[part.seed == int(seed)]
        if match.empty:
            raise InvalidSearchSetup(f"the replay table has no seed {seed} for {trial}",
                                     hint=f"its seeds are {self.seeds(trial)}")
        return match.iloc[0]

    def observe(self, trial: Trial, seed: int) -> Observation:
        """What a search sees of ``trial`` answered by run ``seed``: validation accuracy and seconds."""
        r = self.row(trial, seed)
        return Observation(float(r.validation_accuracy), float(r.seconds), int(seed))

    def test_accuracy(self, trial: Trial, seed: int) -> float:
        """The test accuracy of run ``seed`` of ``trial`` (for reporting a choice, never for making one)."""
        return float(self.row(trial, seed).test_accuracy)

    def mean(self, trial: Trial) -> dict[str, float]:
        """Mean over the cell's seeds of validation and test accuracy and seconds."""
        part = self._cell(trial)
        return {"validation_accuracy": float(part.validation_accuracy.mean()),
                "test_accuracy": float(part.test_accuracy.mean()), "seconds": float(part.seconds.mean()),
                "seeds": len(part)}

    def observer(self, rng: np.random.Generator) -> Observe:
        """A search's ``observe``: each trial answered by one of its cell's seeds drawn by ``rng``."""

        def observe(trial: Trial) -> Observation:
            seeds = self.seeds(trial)
            return self.observe(trial, seeds[int(rng.integers(len(seeds)))])

        return observe

    def missing(self, space: SearchSpace) -> list[Trial]:
        return [t for t in space.grid() if t not in self._cells]

    def total_seconds(self, space: SearchSpace) -> float:
        """Seconds to evaluate every cell of ``space`` once (mean over seeds): what a search would
        need to enumerate the grid; a budget at or above it is no search at all."""
        return float(sum(self.mean(t)["seconds"] for t in space.grid()))

    def oracle(self, space: SearchSpace) -> tuple[Trial, float]:
        """The cell of ``space`` with the best mean test accuracy and that accuracy (an upper
        reference for regret; a max over noisy means, so slightly optimistic)."""
        best = max(space.grid(), key=lambda t: (self.mean(t)["test_accuracy"], -space.expected_seconds(t)))
        return best, self.mean(best)["test_accuracy"]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.frame.to_csv(path, index=False)
        return path

    @classmethod
    def read_csv(cls, path: str | Path) -> "ReplayTable":
        return cls(pd.read_csv(path))

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> "ReplayTable":
        rows = list(rows)
        return cls(pd.DataFrame(rows, columns=list(COLUMNS)) if rows else pd.DataFrame(columns=list(COLUMNS)))
