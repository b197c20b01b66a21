"""The meta-dataset of fine-tuning runs that NASOA's online predictor learns from (section 4.3).

``config``   the profile's ``metadata:`` section (sampling ranges, run count, workers)
``sampling`` run ``i`` of a collection (task, model, regime, checkpoints), a pure function of (config, i)
``collect``  parallel, resumable collection into the artifact store (process pool or Ray)
``export``   the rows as a pandas frame, ``meta_dataset.parquet`` and its data card
``analysis`` marginal effects, an offline sanity model, throughput (notebook 05)
"""

from nasoa_lib.metadata.collect import (
    META_RUN_KIND,
    CandidateModel,
    CollectSummary,
    Job,
    MetaRunRecord,
    candidate_models,
    collect,
    collection_id,
    corrupt_keys,
    dataset_counts,
    drop_corrupt_rows,
    execute,
    expected_seconds,
    make_jobs,
    pending_runs,
    plan_table,
    row_index,
    row_key,
    run_job,
    step_seconds,
    stored_runs,
    stored_rows,
)
from nasoa_lib.metadata.config import MetaDatasetConfig
from nasoa_lib.metadata.export import (
    COLUMNS,
    EXPORT_KIND,
    ExportedMetaDataset,
    data_card,
    export,
    exported_path,
    load_meta_dataset,
)
from nasoa_lib.metadata.sampling import SPLIT_TRAIN, SPLIT_VALIDATION, DatasetCounts, SampledRun, check_meta_train, sample_run

__all__ = [
    "COLUMNS", "EXPORT_KIND", "META_RUN_KIND", "SPLIT_TRAIN", "SPLIT_VALIDATION", "CandidateModel", "CollectSummary",
    "DatasetCounts", "ExportedMetaDataset", "Job", "MetaDatasetConfig", "MetaRunRecord", "SampledRun", "candidate_models",
    "check_meta_train", "collect", "collection_id", "corrupt_keys", "data_card", "dataset_counts",
    "drop_corrupt_rows", "execute", "expected_seconds", "export", "exported_path", "load_meta_dataset", "make_jobs",
    "pending_runs", "plan_table", "row_index", "row_key", "run_job", "sample_run", "step_seconds", "stored_rows",
    "stored_runs",
]
