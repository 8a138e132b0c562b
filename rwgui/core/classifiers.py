"""Classification networks for the natural pre-image task, built to load torchvision's weight files.

torchvision cannot be installed beside rwgui's torch, and nothing may be downloaded at run time, so the person
brings a weights file (a state dict saved from torchvision's AlexNet or VGG) and rwgui builds the matching
module structure itself: ``features`` (convolutions, ReLUs, max-pools), ``avgpool`` and ``classifier``
(dropouts, linears, ReLUs) at the same indices, so the keys ``features.N.weight`` and ``classifier.N.weight``
line up. The layer widths and kernel sizes are read from the file's tensor shapes, which is what lets a test
build a tiny AlexNet-shaped network, save it and load it back like a real one.

Files are read with ``torch.load(weights_only=True)``: a weights file is data, and a pickle that would run
code is refused (WeightsError), not executed.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import WeightsError

#: The convolutions' indices in ``features`` identify AlexNet; VGG variants are named by their convolution count.
_ALEXNET_CONVS = (0, 3, 6, 8, 10)
_VGG_NAMES = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}


class Classifier(nn.Module):
    """features -> avgpool -> flatten -> classifier, torchvision's layout for AlexNet and VGG."""

    def __init__(self, arch: str, features: nn.Sequential, pool: int, classifier: nn.Sequential) -> None:
        super().__init__()
        self.arch = arch
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet(
    widths: Sequence[int] = (64, 192, 384, 256, 256), hidden: int = 4096, classes: int = 1000, in_channels: int = 3
) -> Classifier:
    """AlexNet (the one-GPU variant torchvision ships): five convolutions (11x11 stride 4, 5x5, three 3x3)
    with ReLUs, max-pools (3, stride 2) after the first, second and fifth, a 6x6 average pool, then
    dropout-linear-ReLU twice and a last linear. ``widths`` and ``hidden`` may be small for tests."""
    w = list(widths)
    if len(w) != 5:
        raise ValueError("AlexNet has five convolutions: give five widths")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, w[0], 11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w[0], w[1], 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w[1], w[2], 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(w[2], w[3], 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(w[3], w[4], 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
    ]
    head = nn.Sequential(
        nn.Dropout(),
        nn.Linear(w[4] * 36, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, classes),
    )
    return Classifier("alexnet", nn.Sequential(*layers), 6, head)


def vgg(
    plan: Sequence[int | str], hidden: int = 4096, classes: int = 1000, batch_norm: bool = False, in_channels: int = 3
) -> Classifier:
    """VGG: 3x3 convolutions (padding 1) each followed by (BatchNorm and) a ReLU, ``"M"`` a 2x2 max-pool, a
    7x7 average pool, then linear-ReLU-dropout twice and a last linear. VGG-16's plan is
    64,64,M,128,128,M,256x3,M,512x3,M,512x3,M; VGG-19 has four convolutions in each of the last three blocks."""
    layers: list[nn.Module] = []
    c = in_channels
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = int(item)
        layers.append(nn.Conv2d(c, out, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        c = out
    head = nn.Sequential(
        nn.Linear(c * 49, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(),
        nn.Linear(hidden, classes),
    )
    name = _VGG_NAMES.get(sum(1 for i in plan if i != "M"), "vgg") + ("_bn" if batch_norm else "")
    return Classifier(name, nn.Sequential(*layers), 7, head)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path``, read with ``weights_only=True`` (a file that needs code to unpickle is
    refused); a checkpoint that wraps it under ``state_dict`` or ``model`` is unwrapped."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"the weights file {path} does not exist")
    try:
        data: Any = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path} cannot be loaded as plain weights ({first[:160]}); rwgui loads only state dicts of tensors "
            "(torch.save(model.state_dict(), PATH)) and never runs code from a file"
        ) from None
    if isinstance(data, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no state dict (a mapping from names to tensors)")
    return {str(k).removeprefix("module."): v for k, v in data.items()}


def _weight_shapes(state: Mapping[str, torch.Tensor], group: str, dim: int) -> dict[int, tuple[int, ...]]:
    """The shapes of ``group.N.weight`` tensors with ``dim`` dimensions, by N: torchvision's keys name the
    convolutions ``features.N`` (4-d weights) and the linear layers ``classifier.N`` (2-d)."""
    out = {}
    for key, t in state.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == group and parts[2] == "weight" and t.dim() == dim:
            out[int(parts[1])] = tuple(t.shape)
    return dict(sorted(out.items()))


def build_from_state(state: Mapping[str, torch.Tensor]) -> Classifier:
    """The AlexNet or VGG whose structure matches ``state``'s keys and shapes, with the weights loaded."""
    convs, linears = _weight_shapes(state, "features", 4), _weight_shapes(state, "classifier", 2)
    if not convs or len(linears) != 3:
        raise WeightsError(
            "the weights are not of a torchvision AlexNet or VGG (expected features.N.weight convolutions and "
            "three classifier.N.weight linears)"
        )
    lin = list(linears.values())
    hidden, classes = lin[0][0], lin[-1][0]
    shapes = list(convs.values())
    if tuple(convs) == _ALEXNET_CONVS:
        net = alexnet([s[0] for s in shapes], hidden, classes, in_channels=shapes[0][1])
    else:
        batch_norm = any(k.endswith("running_mean") and k.startswith("features.") for k in state)
        step = 3 if batch_norm else 2
        plan: list[int | str] = []
        idx = list(convs)
        for i, (at, shape) in enumerate(convs.items()):
            plan.append(shape[0])
            nxt = idx[i + 1] if i + 1 < len(idx) else None
            if nxt is None or nxt - at > step:
                plan.append("M")
        net = vgg(plan, hidden, classes, batch_norm, in_channels=shapes[0][1])
    expected = math.isqrt(lin[0][1] // max(1, shapes[-1][0]))
    if expected * expected * shapes[-1][0] != lin[0][1]:
        raise WeightsError("the first classifier layer does not match the last convolution's width")
    net.avgpool = nn.AdaptiveAvgPool2d((expected, expected))
    try:
        net.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"the weights do not fit an AlexNet or VGG layout: {str(exc).splitlines()[0]}") from None
    return net.eval()


def load_classifier(path: str | Path) -> Classifier:
    """The classifier a weights file holds (AlexNet or VGG-11/13/16/19, with or without BatchNorm)."""
    return build_from_state(load_state_dict(path))


def layer_names(net: Classifier) -> list[str]:
    """Every layer one can invert, in order: ``features.N``, then ``classifier.N`` (the last is the logits)."""
    return [f"features.{i}" for i in range(len(net.features))] + [f"classifier.{i}" for i in range(len(net.classifier))]


def default_layer(net: Classifier) -> str:
    """The last ReLU of ``features`` (AlexNet's conv5, the deepest convolutional representation)."""
    relus = [i for i, m in enumerate(net.features) if isinstance(m, nn.ReLU)]
    return f"features.{relus[-1]}"


def _resolve_layer(net: Classifier, layer: str) -> tuple[str, int]:
    """``features.N``/``classifier.N``, or a friendly name: ``convK``/``reluK``/``poolK`` (the K-th of its
    kind in ``features``, from 1), ``fcK`` (AlexNet's and VGG's fc6, fc7, fc8: the classifier's linears),
    ``logits``."""
    name = layer.strip().lower()
    if name == "logits":
        return "classifier", len(net.classifier) - 1
    part, _, num = name.partition(".")
    if part in ("features", "classifier") and num.isdigit():
        seq = net.features if part == "features" else net.classifier
        if int(num) >= len(seq):
            raise WeightsError(f"layer {layer!r} does not exist: {part} has {len(seq)} layers")
        return part, int(num)
    kinds: dict[str, type[nn.Module]] = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for prefix, kind in kinds.items():
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            found = [i for i, m in enumerate(net.features) if isinstance(m, kind)]
            k = int(name[len(prefix) :])
            if 1 <= k <= len(found):
                return "features", found[k - 1]
    if name.startswith("fc") and name[2:].isdigit():
        found = [i for i, m in enumerate(net.classifier) if isinstance(m, nn.Linear)]
        k = int(name[2:]) - 5
        if 1 <= k <= len(found):
            return "classifier", found[k - 1]
    raise WeightsError(
        f"unknown layer {layer!r}; use features.N, classifier.N, convK, reluK, poolK, fc6..fc8 or logits "
        f"(this network has {len(net.features)} feature layers and {len(net.classifier)} classifier layers)"
    )


class Truncated(nn.Module):
    """The classifier up to and including one layer: what the pre-image matches."""

    def __init__(self, net: Classifier, layer: str) -> None:
        super().__init__()
        part, index = _resolve_layer(net, layer)
        self.layer = f"{part}.{index}"
        if part == "features":
            self.features = nn.Sequential(*list(net.features)[: index + 1])
            self.head: nn.Module | None = None
        else:
            self.features = net.features
            self.head = nn.Sequential(net.avgpool, nn.Flatten(1), *list(net.classifier)[: index + 1])
        for m in self.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the pre-image differentiates through it
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return x if self.head is None else self.head(x)
