"""Exceptions for people: each says what was wrong and what to do (``hint``).

One place for every error the library raises on bad input, so the CLI can print
``error: <message>`` plus ``hint: <hint>`` instead of a traceback.
"""

from __future__ import annotations


class NasoaError(Exception):
    """Base class: ``str(err)`` says what is wrong, ``err.hint`` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (hint: {self.hint})" if self.hint else base


class UnknownProfileError(NasoaError, KeyError):
    """A profile name that ``configs/profiles.yaml`` does not define."""


class ProfileConfigError(NasoaError, ValueError):
    """A profile section with unknown or missing keys."""


class DatasetNotFoundError(NasoaError, FileNotFoundError):
    """A dataset that is not on disk (names the manifest that says how to get it)."""


class UnknownDatasetError(NasoaError, KeyError):
    """A dataset name with no manifest in ``data_manifests/``; lists the known names."""


class ChecksumMismatchError(NasoaError, ValueError):
    """A prepared dataset whose sha256 differs from its manifest."""


class InvalidDataError(NasoaError, ValueError):
    """User data that cannot be a classification task (empty class, unreadable image, < 2 classes)."""


class StoreCorruptedError(NasoaError, RuntimeError):
    """An artifact/result store that cannot be read; says which file and how to recover."""


class InvalidArchitectureCode(NasoaError, ValueError):
    """A malformed architecture code; says which part is wrong and what is allowed."""


class UnknownModelError(NasoaError, KeyError):
    """A model name that no registry (baselines, zoo) knows."""


class InvalidRegimeError(NasoaError, ValueError):
    """A fine-tuning regime or task that cannot run (frozen stages, lr, iterations, time limit)."""


class BudgetTooSmallError(NasoaError, ValueError):
    """A time budget no model fits; says the smallest feasible budget."""


class InvalidBudgetError(NasoaError, ValueError):
    """A time budget that cannot be read (empty, unknown unit, zero or negative); says how to write one."""


class NotebookFailedError(NasoaError, RuntimeError):
    """A notebook that failed under the runner; names the notebook and the cell."""


class ArtifactNotFoundError(NasoaError, FileNotFoundError):
    """An artifact the store should hold but does not (names kind/key/name and the stage to re-run)."""


class NotebookNotFoundError(NasoaError, LookupError):
    """A notebook selector (``--only``) that matches no notebook; lists the ones there are."""


class InvalidNetworkSpace(NasoaError, ValueError):
    """An NSS network space or architecture that the Expanded Search Space cannot hold (empty range,
    range outside ``1..d_max`` / ``1..w_max``, malformed string)."""


class InfeasibleConstraintError(NasoaError, ValueError):
    """A NAS step-time bound T_m (NASOA Eq. 1) that no architecture of the search space can meet;
    says the fastest measured step time."""


class SearchStateCorruptedError(NasoaError, RuntimeError):
    """A saved NAS generation state that cannot be read or disagrees with the stored evaluations."""


class InvalidEstimatorInput(NasoaError, ValueError):
    """Feature-history estimator input that cannot work (window K < 1, features whose shapes or
    label counts disagree with each other or with the head); says which shapes were given."""


class NoFeatureHistoryError(NasoaError, LookupError):
    """A feature-history estimate asked for before any epoch's features were saved."""


class InvalidSearchSetup(NasoaError, ValueError):
    """A random-search/HyperBand/BOHB run that cannot run on its tabular benchmark (budgets outside
    the recorded epochs, unknown ranking metric, empty benchmark)."""


class StoreLockTimeoutError(NasoaError, TimeoutError):
    """A store lock (e.g. around an online predictor's load-update-save) still held by another
    process after the wait limit; names the lock file."""


class UnusablePathError(NasoaError, ValueError):
    """A path given on the command line that is the wrong kind (a folder where a file belongs, a
    file where a folder belongs) or cannot be written; says what to give instead. Raised before any
    work, so nothing is written."""


class StoreNotFoundError(ArtifactNotFoundError):
    """A profile's artifact store that does not exist yet (reading it must not create an empty
    one); names the command that builds it, or the profile whose store does exist."""


class InvalidModelFileError(NasoaError, ValueError):
    """A fine-tuned model (``model.pt`` / ``run_card.json`` of ``nasoa finetune``) that cannot be
    read or whose weights do not fit the network its code describes; names the file."""
