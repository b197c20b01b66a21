"""NASOA's online accuracy predictor (section 3.2.1, Table 3; notebook 06).

``encoding``: meta-features -> input vector (fixed transforms, then standardised with statistics of
the rows already learned from); ``network``: the MLP with output heads and Hedge Backpropagation
(Eq. 3-4, Hedge on per-step normalised losses as in Sahoo et al.'s code); ``predictor``: one
interface for the adaptive, fixed and offline predictors, with save/load and the artifact store;
``stream``: the online evaluation behind Table 3 (orderings, segment errors, alpha over time,
empirical regret).
"""

from nasoa_lib.errors import InvalidMetaFeaturesError, InvalidPredictorConfig, PredictorNotFittedError
from nasoa_lib.online.encoding import FEATURE_RANGES, FeatureEncoder, RunningStandardizer
from nasoa_lib.online.network import (
    HedgeMLP,
    NetworkConfig,
    bounded_loss,
    hedge_update,
    loss_gradient,
    normalized_losses,
)
from nasoa_lib.online.predictor import (
    KINDS,
    PREDICTOR_KIND,
    AccuracyPredictor,
    PredictorConfig,
    load_predictor,
    make_predictor,
    predictor_lock,
    store_predictor,
    update_stored_predictor,
)
from nasoa_lib.online.stream import (
    ADAPTIVE_LABEL,
    NOISE_LABEL,
    OFFLINE_LABEL,
    RATIO_BAR,
    REFERENCE_LABEL,
    SEGMENTS,
    OnlineConfig,
    StreamEvaluation,
    StreamRun,
    average_regret,
    evaluate_stream,
    block_starts,
    hedge_reference,
    noise_floor_per_row,
    plan,
    running_mean_predictions,
    segment_errors,
    stream_groups,
    stream_order,
)
from nasoa_lib.paper import PAPER_TABLE3

__all__ = [
    "FEATURE_RANGES", "KINDS", "PREDICTOR_KIND", "AccuracyPredictor", "FeatureEncoder", "HedgeMLP",
    "InvalidMetaFeaturesError", "InvalidPredictorConfig", "NetworkConfig", "PredictorConfig",
    "PredictorNotFittedError", "bounded_loss", "hedge_update", "load_predictor", "loss_gradient",
    "make_predictor", "normalized_losses", "predictor_lock", "RunningStandardizer", "store_predictor",
    "update_stored_predictor",
    "ADAPTIVE_LABEL", "NOISE_LABEL", "OFFLINE_LABEL", "PAPER_TABLE3", "RATIO_BAR", "REFERENCE_LABEL", "SEGMENTS", "OnlineConfig", "StreamEvaluation", "StreamRun",
    "average_regret", "block_starts", "evaluate_stream", "hedge_reference", "noise_floor_per_row", "plan", "running_mean_predictions", "segment_errors",
    "stream_groups", "stream_order",
]
