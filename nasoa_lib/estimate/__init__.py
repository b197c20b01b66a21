"""Feature-history performance estimation (Cao, CMU thesis; ``papers/003``), notebook 08.

During training, the penultimate features of the training and validation images are saved after
every epoch (:class:`FeatureHistory`, the K = 10 most recent epochs); :func:`estimate` refits a
linear classifier per kept epoch from the network's head at that epoch and averages their softmax
outputs on the validation features: an estimate of the accuracy the network will reach at the end
of training (thesis section 3.1, Algorithm 1, appendix A.1).

* :mod:`.history`: the memory-bounded feature history (the training callback's state);
* :mod:`.ensemble`: the refit and the ensemble (:func:`estimate`);
* :mod:`.training`: the training loop with per-epoch feature capture, and :func:`proxy_accuracy`,
  the NAS proxy metric with or without the estimator;
* :mod:`.search`: random search, HyperBand and BOHB (SMAC3) ranked by a chosen metric on a tabular
  benchmark (thesis Tables 4.1, 4.3).

Notebook 08's experiment (the population, its claims and figures) is a study:
:mod:`nasoa_lib.studies.feature_histories`.

As the proxy metric of a NAS search (thesis section 3.2)::

    from nasoa_lib.data import sample_task
    from nasoa_lib.estimate import HistoryData, proxy_accuracy
    from nasoa_lib.train import build_model

    data = HistoryData.from_task(sample_task("tinyimagenet100", 20, 220, seed=0), val_per_class=40)
    score = proxy_accuracy(build_model(code, data.num_classes), data, epochs=5, use_estimator=True)
"""

from nasoa_lib.estimate.ensemble import Estimate, RefitConfig, accuracy, estimate, refit_linear
from nasoa_lib.estimate.history import DEFAULT_WINDOW, EpochFeatures, FeatureHistory, classifier_layer
from nasoa_lib.estimate.search import (
    SearchResult,
    TabularBenchmark,
    compare_searches,
    hyperband,
    random_search,
    summarize_searches,
)
from nasoa_lib.estimate.training import HistoryData, TrainSettings, proxy_accuracy, train_with_history

__all__ = [
    "DEFAULT_WINDOW", "EpochFeatures", "Estimate", "FeatureHistory", "HistoryData",
    "RefitConfig", "SearchResult", "TabularBenchmark", "TrainSettings", "accuracy",
    "classifier_layer", "compare_searches", "estimate",
    "hyperband", "proxy_accuracy", "random_search", "refit_linear",
    "summarize_searches", "train_with_history",
]
