"""What the meta-dataset says (notebook 05): marginal effects, an offline sanity model, throughput.

NASOA's premise (section 3.2.1) is that the listed meta-features predict fine-tuning accuracy.
Before the online predictors of notebook 06 rely on it, :func:`sanity_check` fits scikit-learn's
gradient boosting on the ``train`` split and compares its validation error with always predicting
the training mean; :func:`partial_dependence` reads the fitted model's partial dependence on each
meta-feature, :func:`marginal_effects` the raw binned means beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from nasoa_lib.errors import InvalidDataError
from nasoa_lib.metafeatures import NUMERIC_FEATURES, TARGET_COLUMN
from nasoa_lib.paper import PAPER_META_DATASET as PAPER

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

#: Features shown on a log axis and binned in log space.
LOG_FEATURES = ("images_per_class", "iterations", "lr")


def design_matrix(frame: pd.DataFrame, models: Sequence[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` = one-hot model columns then the numeric meta-features (NASOA's predictor input), ``y``."""
    models = sorted(frame["model"].unique()) if models is None else list(models)
    onehot = pd.DataFrame({f"model={m}": (frame["model"] == m).astype(float) for m in models}, index=frame.index)
    x = pd.concat([onehot, frame[list(NUMERIC_FEATURES)].astype(float)], axis=1)
    return x, frame[TARGET_COLUMN].to_numpy(float)


def _splits(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    if len(train) < 2 or len(valid) < 1:
        raise InvalidDataError(
            f"the meta-dataset has {len(train)} train and {len(valid)} validation rows; need >= 2 and >= 1",
            hint="collect more runs",
        )
    return train, valid


def fit_sanity_model(frame: pd.DataFrame, seed: int = 0) -> BaseEstimator:
    """Gradient boosting (scikit-learn defaults, fixed seed) on the ``train`` split."""
    from sklearn.ensemble import GradientBoostingRegressor

    train, _ = _splits(frame)
    x, y = design_matrix(train, sorted(frame["model"].unique()))
    model = GradientBoostingRegressor(random_state=seed)
    model.fit(x, y)
    model.feature_names_ = list(x.columns)
    return model


def sanity_check(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, BaseEstimator]:
    """Validation MAE / MSE / R^2 of the training mean and of gradient boosting on the meta-features."""
    train, valid = _splits(frame)
    model = fit_sanity_model(frame, seed)
    x_valid, y_valid = design_matrix(valid, sorted(frame["model"].unique()))
    predictions = {
        "training mean": np.full(len(valid), train[TARGET_COLUMN].mean()),
        "gradient boosting (meta-features)": model.predict(x_valid),
    }
    variance = float(np.var(y_valid)) if len(valid) > 1 else float("nan")
    rows = []
    for name, pred in predictions.items():
        err = pred - y_valid
        mse = float(np.mean(err**2))
        rows.append({"predictor": name, "train_rows": len(train), "validation_rows": len(valid),
                     "mae": float(np.mean(np.abs(err))), "mse": mse,
                     "r2": 1.0 - mse / variance if variance and variance > 0 else float("nan")})
    return pd.DataFrame(rows), model


def partial_dependence(model: BaseEstimator, frame: pd.DataFrame, features: Sequence[str] = NUMERIC_FEATURES,
                       grid_points: int = 12) -> pd.DataFrame:
    """Partial dependence of the sanity model on each numeric meta-feature (sklearn.inspection,
    brute force), over the grid of the feature's 5-95 % quantiles."""
    from sklearn.inspection import partial_dependence as sk_partial_dependence

    x, _ = design_matrix(frame, [c.split("=", 1)[1] for c in model.feature_names_ if c.startswith("model=")])
    rows = []
    for feature in features:
        if x[feature].nunique() < 2:
            continue
        # "brute" averages real predictions; gradient boosting's fast "recursion" leaves out the
        # initial prediction (the mean), which would shift every curve towards 0.
        result = sk_partial_dependence(model, x, [feature], grid_resolution=grid_points, kind="average",
                                       method="brute")
        for value, avg in zip(result["grid_values"][0], result["average"][0]):
            rows.append({"feature": feature, "value": float(value), "predicted_accuracy": float(avg)})
    return pd.DataFrame(rows)


def marginal_effects(frame: pd.DataFrame, feature: str, bins: int = 8) -> pd.DataFrame:
    """Mean, spread and count of accuracy per bin of ``feature`` (quantile bins, in log space for
    :data:`LOG_FEATURES`; one bin per value when it has few distinct values)."""
    values = frame[feature]
    if values.dtype == object or values.nunique() <= bins:
        groups = values
    else:
        ranked = np.log(values.astype(float)) if feature in LOG_FEATURES else values.astype(float)
        groups = pd.qcut(ranked, bins, duplicates="drop")
    table = frame.groupby(groups, observed=True).agg(
        value=(feature, "median"), accuracy_mean=(TARGET_COLUMN, "mean"), accuracy_std=(TARGET_COLUMN, "std"),
        runs=(TARGET_COLUMN, "size"))
    table.insert(0, "feature", feature)
    return table.reset_index(drop=True)


def counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs per model x dataset (with totals; a run's checkpoint rows count once)."""
    return runs_of(frame).pivot_table(index="model", columns="dataset", values="run", aggfunc="count", fill_value=0,
                                    margins=True, margins_name="all")


def runs_of(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per run (its last checkpoint's row: the run's length, steps and training time)."""
    return frame.sort_values(["run", "epochs"]).groupby("run", sort=True).tail(1)


def accuracy_by_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per checkpoint (epochs of the task) and frozen stages: median and quartiles over the
    rows, and the rows' count (the learning curves the checkpoint rows carry)."""
    grouped = frame.groupby(["frozen_stages", "epochs"])[TARGET_COLUMN]
    table = grouped.agg(median="median", q25=lambda v: v.quantile(0.25), q75=lambda v: v.quantile(0.75),
                        rows="size")
    return table.reset_index()


def throughput(frame: pd.DataFrame, workers: int) -> pd.DataFrame:
    """Per model: runs, rows, mean worker seconds per run (all its checkpoints), and runs and rows
    per hour on ``workers`` workers."""
    runs = runs_of(frame)
    rows = frame.groupby("model").size().rename("rows")
    table = runs.groupby("model").agg(runs=("run", "size"), mean_run_wall_seconds=("run_wall_seconds", "mean"),
                                      mean_train_seconds=("train_seconds", "mean"),
                                      mean_epochs=("epochs", "mean"), mean_iterations=("iterations", "mean"))
    table = table.join(rows).reset_index()
    table["runs_per_hour"] = workers * 3600.0 / table["mean_run_wall_seconds"]
    table["rows_per_hour"] = table["runs_per_hour"] * table["rows"] / table["runs"]
    overall = {"model": "all", "runs": len(runs), "mean_run_wall_seconds": runs["run_wall_seconds"].mean(),
               "mean_train_seconds": runs["train_seconds"].mean(), "mean_epochs": runs["epochs"].mean(),
               "mean_iterations": runs["iterations"].mean(), "rows": len(frame),
               "runs_per_hour": workers * 3600.0 / runs["run_wall_seconds"].mean()}
    overall["rows_per_hour"] = overall["runs_per_hour"] * len(frame) / max(1, len(runs))
    return pd.concat([table, pd.DataFrame([overall])], ignore_index=True)


def headline(frame: pd.DataFrame, sanity: pd.DataFrame, workers: int) -> dict[str, Any]:
    """Notebook 05's headline numbers (rows, spread of accuracy, throughput, sanity-model gain)."""
    by = sanity.set_index("predictor")
    mean_mae = float(by.loc["training mean", "mae"])
    model_mae = float(by.loc["gradient boosting (meta-features)", "mae"])
    return {
        "rows (checkpoints)": int(len(frame)),
        "runs": int(frame["run"].nunique()),
        "runs_paper": PAPER["runs"],
        "run length (epochs)": f"{int(frame['epochs'].min())}..{int(frame['epochs'].max())}",
        "train / validation rows": f"{int((frame['split'] == 'train').sum())} / {int((frame['split'] == 'validation').sum())}",
        "test-half disagreement |even - odd| (mean)": round(float((frame["accuracy_even"] - frame["accuracy_odd"]).abs().mean()), 4),
        "models": int(frame["model"].nunique()),
        "accuracy mean (std)": f"{frame[TARGET_COLUMN].mean():.3f} ({frame[TARGET_COLUMN].std():.3f})",
        "worker hours": round(float(frame["wall_seconds"].sum() / 3600.0), 2),
        "runs per hour": round(float(workers * 3600.0 / runs_of(frame)["run_wall_seconds"].mean()), 0),
        "validation MAE: mean -> gradient boosting": f"{mean_mae:.3f} -> {model_mae:.3f}",
    }
