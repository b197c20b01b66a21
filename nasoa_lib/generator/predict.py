"""Using a fine-tuned model: ``nasoa predict`` and :func:`load_finetuned` (SPEC section 1, the step
after ``nasoa finetune``).

``nasoa finetune --out runs/x`` writes ``runs/x/model.pt`` (a ``torch.save`` dict: ``state_dict``,
``code``, ``model``, ``class_names``, ``image_size``, optionally ``small_image_stem``) and
``runs/x/run_card.json``. This module is that format's reader, kept beside its writer
(:mod:`nasoa_lib.generator.service`); the command's arguments and output live with the other
commands' in :mod:`nasoa_lib.generator.commands`::

    from nasoa_lib.generator.predict import load_finetuned

    fitted = load_finetuned("runs/x")              # the run folder, or its model.pt
    labels = fitted.predict(images)                # uint8 (N, H, W, 3) RGB -> class indices
    names = [fitted.class_names[i] for i in labels]

The network is rebuilt by the library's one builder (:func:`nasoa_lib.train.build_model`) from
the saved code, and images get exactly the fine-tuning's preprocessing: RGB, centre square crop,
bicubic resize to the run's image size (:func:`nasoa_lib.data.user_data.convert_image`), then
ImageNet mean/std (:func:`nasoa_lib.data.to_tensor`). So predicting on the test split of the data a
run was fine-tuned on gives the accuracy its run card reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from nasoa_lib.errors import (
    ArtifactNotFoundError, DatasetNotFoundError, InvalidDataError, InvalidModelFileError, NasoaError,
)

if TYPE_CHECKING:  # torch loads only when a command runs
    import torch

    from nasoa_lib.staged import StagedNetwork

SPLITS = ("test", "train", "all")
_FINETUNE_HINT = "fine-tune one with: nasoa finetune --data DIR --budget 10m --out runs/x"
_REFINETUNE_HINT = "the file is damaged or was not written by nasoa finetune: run nasoa finetune again"



@dataclass(frozen=True, eq=False)
class FinetunedModel:
    """A fine-tuned network (eval mode) with its class names and the preprocessing it was trained with."""

    network: "StagedNetwork"
    class_names: tuple[str, ...]
    image_size: int
    model: str
    code: str
    path: Path

    def preprocess(self, images: np.ndarray) -> "torch.Tensor":
        """uint8 (N, H, W, 3) RGB -> the normalised float NCHW batch fine-tuning fed the network;
        images of another size are first centre-cropped and resized like a user's images."""
        _check_images(images)
        return self._tensor(images)

    def _tensor(self, images: np.ndarray) -> "torch.Tensor":
        from nasoa_lib.data import to_tensor

        return to_tensor(_at_size(images, self.image_size), self.image_size)

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Softmax class probabilities ``(N, num_classes)`` (no gradient, eval mode), ``batch_size``
        images at a time so large inputs never become one huge float tensor."""
        import torch

        _check_images(images)
        parts = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = self._tensor(images[start : start + batch_size])
                parts.append(torch.softmax(self.network(x), dim=1).numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.class_names)), dtype=np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(N,)`` into :attr:`class_names`."""
        return self.probabilities(images).argmax(axis=1)


def load_finetuned(path: str | Path) -> FinetunedModel:
    """The fine-tuned model of a ``nasoa finetune`` run: its folder or its ``model.pt``.

    Missing path -> :class:`ArtifactNotFoundError`; a file that is not a readable model, or weights
    that do not fit the network of the saved code -> :class:`InvalidModelFileError`.
    """
    import torch

    from nasoa_lib.generator.service import CARD_FILE, WEIGHTS_FILE
    from nasoa_lib.train import build_model

    path = Path(path).expanduser()
    if not path.exists():
        raise ArtifactNotFoundError(f"no fine-tuned model at {path}", hint=_FINETUNE_HINT)
    file = path / WEIGHTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ArtifactNotFoundError(f"{path} holds no {WEIGHTS_FILE}",
                                    hint=f"pass the --out folder of nasoa finetune; {_FINETUNE_HINT}")
    card = _read_card(file.parent / CARD_FILE)
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip, EOF and runtime errors for damaged files
        raise InvalidModelFileError(f"{file} cannot be read as a fine-tuned model ({type(err).__name__}: "
                                    f"{str(err).splitlines()[0] if str(err) else ''})", hint=_REFINETUNE_HINT) from err
    state, code, class_names, image_size = _check_saved(saved, file)
    if card is not None and "class_names" in card and list(card["class_names"]) != list(class_names):
        raise InvalidModelFileError(f"{file} and the {CARD_FILE} beside it name different classes",
                                    hint="keep each model.pt with the run card nasoa finetune wrote with it")
    stem = saved.get("small_image_stem")
    if stem is None:
        stem = _stem_from_card(card, file)
    try:
        network = build_model(code, len(class_names), image_size, bool(stem))
    except NasoaError as err:
        raise InvalidModelFileError(f"{file}: its code {code!r} cannot be built ({err.args[0]})",
                                    hint=_REFINETUNE_HINT) from err
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise InvalidModelFileError(f"{file}: its weights do not fit the network of code {code!r} ({first})",
                                    hint=_REFINETUNE_HINT) from err
    network.eval()
    return FinetunedModel(network, class_names, image_size, str(saved.get("model", code)), code, file)


def _read_card(card_path: Path) -> Mapping[str, Any] | None:
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InvalidModelFileError(f"{card_path} is not a readable run card ({err})", hint=_REFINETUNE_HINT) from err
    if not isinstance(card, dict):
        raise InvalidModelFileError(f"{card_path} is not a run card (a JSON object)", hint=_REFINETUNE_HINT)
    return card


def _check_saved(saved: Any, file: Path) -> tuple[Mapping[str, Any], str, tuple[str, ...], int]:
    def bad(what: str) -> InvalidModelFileError:
        return InvalidModelFileError(f"{file} is not a fine-tuned model of nasoa finetune: {what}",
                                     hint=_REFINETUNE_HINT)

    if not isinstance(saved, dict):
        raise bad(f"it holds a {type(saved).__name__}, not the dict nasoa finetune writes")
    missing = [k for k in ("state_dict", "code", "class_names", "image_size") if k not in saved]
    if missing:
        raise bad(f"keys {missing} are missing (it has {sorted(map(str, saved))})")
    state, code, names, size = saved["state_dict"], saved["code"], saved["class_names"], saved["image_size"]
    if not isinstance(state, dict):
        raise bad("its state_dict is not a dict of tensors")
    if not isinstance(code, str):
        raise bad(f"its code is a {type(code).__name__}, not an architecture code string")
    if not isinstance(names, (list, tuple)) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise bad("its class_names are not a list of >= 2 strings")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise bad(f"its image_size {size!r} is not a positive int")
    return state, code, tuple(names), size


def _stem_from_card(card: Mapping[str, Any] | None, file: Path) -> bool:
    """The stem choice of a model.pt written without ``small_image_stem``: its profile's
    ``models.small_image_stem``, the value fine-tuning built the network with."""
    from nasoa_lib.generator.service import CARD_FILE, WEIGHTS_FILE
    from nasoa_lib.models import ModelsConfig

    if card is None or not isinstance(card.get("profile"), str):
        raise InvalidModelFileError(
            f"{file} does not say whether its network uses the small-image stem, and no {CARD_FILE} "
            "(with the profile it was fine-tuned under) lies beside it",
            hint=f"keep {CARD_FILE} next to {WEIGHTS_FILE}, or pass the run folder nasoa finetune wrote",
        )
    return ModelsConfig.from_profile(card["profile"]).small_image_stem


def _check_images(images: Any) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise InvalidDataError(
            f"images must be uint8 (N, H, W, 3) RGB, got {getattr(images, 'dtype', type(images).__name__)} "
            f"{getattr(images, 'shape', None)}",
            hint="read files with nasoa_lib.generator.predict.read_inputs or nasoa_lib.data.load_user_dataset",
        )


def _at_size(images: np.ndarray, image_size: int) -> np.ndarray:
    from PIL import Image

    from nasoa_lib.data.user_data import convert_image

    if images.shape[1:3] == (image_size, image_size):
        return images
    return np.stack([convert_image(Image.fromarray(img), image_size) for img in images]) if len(images) else \
        np.zeros((0, image_size, image_size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, eq=False)
class Inputs:
    """Images to classify: pixels at the model's size, a name per image, labels when known."""

    images: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    source: str = ""


def read_inputs(paths: Sequence[str | Path], image_size: int, split: str = "test") -> Inputs:
    """What ``--data`` names: one labelled dataset (an image folder with class sub-folders, or an
    ``.npz``; its ``split`` is used, ``test`` by default: the same held-out images fine-tuning
    scored), or image files and folders of images (no class sub-folders), unlabelled."""
    from nasoa_lib.data import load_user_dataset
    from nasoa_lib.data.user_data import IMAGE_EXTENSIONS, image_files, read_image, subfolders

    if split not in SPLITS:
        raise InvalidDataError(f"split {split!r} unknown", hint=f"use one of {', '.join(SPLITS)}")
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise InvalidDataError("no images given", hint="pass --data with image files, a folder or an .npz")
    for p in paths:
        if not p.exists():
            raise DatasetNotFoundError(f"{p} does not exist", hint="pass image files, a folder of images or an .npz")
    labelled = [p for p in paths if p.suffix.lower() == ".npz" or (p.is_dir() and subfolders(p))]
    if labelled:
        if len(paths) > 1:
            raise InvalidDataError(
                f"{labelled[0]} is a labelled dataset (class folders or .npz) and cannot be mixed with other "
                "--data paths",
                hint="score one labelled dataset at a time, or pass only image files / folders of images")
        data = load_user_dataset(labelled[0], image_size=image_size)
        parts = {"train": [(data.x_train, data.y_train)], "test": [(data.x_test, data.y_test)],
                 "all": [(data.x_train, data.y_train), (data.x_test, data.y_test)]}[split]
        images = np.concatenate([x for x, _ in parts])
        labels = np.concatenate([y for _, y in parts])
        if len(images) == 0:
            raise InvalidDataError(f"{labelled[0]} has no {split} images", hint="use --split train or --split all")
        names = tuple(f"{split}[{i}]" for i in range(len(images)))
        return Inputs(images, names, labels, tuple(data.class_names), f"{data.name} ({split} split)")
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            inside = image_files(p, recursive=False)
            if not inside:
                raise InvalidDataError(f"folder {p} holds no images ({', '.join(IMAGE_EXTENSIONS)})",
                                       hint="pass image files, a folder of images, or DIR/<class>/ folders")
            files += inside
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(p)
        else:
            raise InvalidDataError(f"{p} is neither an image ({', '.join(IMAGE_EXTENSIONS)}), a folder nor an .npz",
                                   hint="pass image files, a folder of images or an .npz")
    images = np.stack([read_image(f, image_size) for f in files])
    return Inputs(images, tuple(str(f) for f in files), None, (), f"{len(files)} image file(s)")


def _model_labels(inputs: Inputs, fitted: FinetunedModel) -> np.ndarray | None:
    """The inputs' labels as the model's class indices (class names are matched by name)."""
    if inputs.labels is None:
        return None
    unknown = [n for n in inputs.class_names if n not in fitted.class_names]
    if unknown:
        raise InvalidDataError(
            f"the data has classes the model was not fine-tuned on: {', '.join(unknown[:10])}"
            f"{' ...' if len(unknown) > 10 else ''} (the model knows {', '.join(fitted.class_names[:10])}"
            f"{' ...' if len(fitted.class_names) > 10 else ''})",
            hint="score it on images of the model's classes, or pass a folder of images without class sub-folders",
        )
    index = np.asarray([fitted.class_names.index(n) for n in inputs.class_names], dtype=np.int64)
    return index[inputs.labels]


# ---------------------------------------------------------------------------------------- predict


def predict(fitted: FinetunedModel, inputs: Inputs, top: int = 1) -> dict[str, Any]:
    """Per-image top-``top`` classes with probabilities, and accuracy when the inputs have labels."""
    if top < 1:
        raise InvalidDataError(f"--top {top}: must be >= 1", hint="e.g. --top 3")
    top = min(top, len(fitted.class_names))
    labels = _model_labels(inputs, fitted)
    probs = fitted.probabilities(inputs.images)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    rows = []
    for i, name in enumerate(inputs.names):
        row: dict[str, Any] = {
            "image": name,
            "predicted": fitted.class_names[order[i, 0]],
            "probability": float(probs[i, order[i, 0]]),
            "top": [{"class": fitted.class_names[j], "probability": float(probs[i, j])} for j in order[i]],
        }
        if labels is not None:
            row["label"] = fitted.class_names[labels[i]]
        rows.append(row)
    result: dict[str, Any] = {"model": fitted.model, "code": fitted.code, "weights": str(fitted.path),
                              "data": inputs.source, "class_names": list(fitted.class_names), "predictions": rows}
    if labels is not None:
        correct = int((order[:, 0] == labels).sum())
        result.update(correct=correct, total=len(labels), accuracy=correct / len(labels))
    return result
