"""Data of the study (SPEC section 3): prepared datasets, manifests, tasks, user data, transforms."""

from nasoa_lib.data.datasets import (
    ImageDataset,
    clear_caches,
    dataset_path,
    load_dataset,
    validate_arrays,
)
from nasoa_lib.data.manifests import (
    DATASET_ROLES,
    ROLE_META_TEST,
    ROLE_META_TRAIN,
    ROLE_SOURCE,
    ROLES,
    Manifest,
    list_manifests,
    load_manifest,
    manifest_path,
)
from nasoa_lib.data.tasks import Task, TaskSpec, make_task, sample_task, sample_task_spec
from nasoa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, random_flip_crop, to_tensor
from nasoa_lib.data.user_data import load_user_dataset

__all__ = [
    "DATASET_ROLES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ROLES",
    "ROLE_META_TEST",
    "ROLE_META_TRAIN",
    "ROLE_SOURCE",
    "ImageDataset",
    "Manifest",
    "Task",
    "TaskSpec",
    "clear_caches",
    "dataset_path",
    "list_manifests",
    "load_dataset",
    "load_manifest",
    "load_user_dataset",
    "make_task",
    "manifest_path",
    "random_flip_crop",
    "sample_task",
    "sample_task_spec",
    "to_tensor",
    "validate_arrays",
]
