"""Exceptions for people: each says what was wrong and what to do (``hint``).

One place for every error the library raises on bad input, so the CLI can print
``error: <message>`` plus ``hint: <hint>`` instead of a traceback.
"""

from __future__ import annotations


class NasoaError(Exception):
    """Base class: ``str(err)`` says what is wrong, ``err.hint`` what to do about it.

    A raise without ``hint=`` gets its class's :attr:`default_hint`, so the command line always
    prints an ``error:`` line *and* a ``hint:`` line."""

    default_hint = "run the command again with -v for details, or see nasoa --help"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint or self.default_hint

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

    default_hint = ("a code is BLOCK_WIDTH_MACRO in ASCII, e.g. 1-_32_1-21-21-2 "
                    "(grammar: nasoa_lib/space/codes.py; released ET-NAS codes: nasoa_lib/space/etnas.py)")


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
    """A search that cannot run: a NAS search (NASOA Eq. 1) with an unknown algorithm, an empty
    population or a space too small to draw new candidates from; a random-search/HyperBand/BOHB run
    on its tabular benchmark (budgets outside the recorded epochs, unknown ranking metric, empty
    benchmark); an HPO comparison asked for a model set it does not have."""


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


class PredictorNotFittedError(NasoaError, RuntimeError):
    """An offline predictor asked to predict before :meth:`AccuracyPredictor.fit` (NASOA 4.3's
    offline baseline learns only from its fit)."""


class InvalidPredictorConfig(NasoaError, ValueError):
    """Predictor settings that cannot work (depth < 1, beta outside (0, 1), unknown loss, ...)."""


class InvalidMetaFeaturesError(NasoaError, ValueError):
    """Meta-features a predictor cannot encode: a missing column, NaN, or a value out of range."""


class UnsafeNameError(NasoaError, ValueError):
    """A name that becomes a file name (a store kind, key or artifact name; a report's table or
    figure name) but is not a plain, safe file name; says which characters are allowed."""


class InvalidSpecValueError(NasoaError, TypeError):
    """A run-spec value that has no canonical JSON form (so no run key): an object without
    ``to_dict()``, or a mapping with non-string keys; says which type it was."""


class InvalidCodeSpace(NasoaError, ValueError):
    """A NASOA block or macro space (``BlockSpace``, ``MacroSpace``, a search's ``CodeSpace``, a
    mutation level) that allows values outside the grammar or holds no architecture to sample or
    mutate to; says the allowed range."""


class UnsupportedNetworkError(NasoaError, ValueError):
    """A network the library cannot stage, measure or register: not four stages at output strides
    4/8/16/32, no ``nn.Linear`` head, no trainable parameters, no stride-2 stem convolution to adapt,
    an unknown family or a name registered twice; says what the network lacks."""


class InvalidMeasurementSetup(NasoaError, ValueError):
    """Step-time, FLOPs or memory measurement settings that cannot run (batch size, image size,
    warm-up or step count out of range); says which one and the smallest allowed value."""


class UnknownRunError(NasoaError, KeyError):
    """A run label (an online stream's predictor run) that the evaluation did not run or whose
    predictor it did not keep; lists the labels it has."""


class InvalidParallelSetup(NasoaError, ValueError):
    """Parallel settings that cannot run: an unknown worker-pool kind, or fewer than one worker or
    thread (a profile's ``workers`` / ``threads``, or a caller's); says what is allowed."""


class InvalidArgumentError(NasoaError, ValueError):
    """A study helper called with arguments that cannot mean anything (paired samples of unequal
    length, an unknown claim direction); says what to pass instead."""


class StopTraining(Exception):
    """Control flow, not an error (so not a :class:`NasoaError`): an ``on_epoch_end`` callback
    raises it to end training after a prefix of the schedule (the proxy accuracy of
    :func:`nasoa_lib.estimate.training.proxy_accuracy`); the caller that passed the callback catches it."""
