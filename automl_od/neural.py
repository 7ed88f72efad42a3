"""Small tabular autoencoders in torch: the APRE network, its scores, and a packed trainer.

Packed training trains K networks of one shape as one batched computation: every layer's
weights are stacked along a leading model dimension and applied with ``torch.baddbmm``, so K
small networks cost about as many kernel launches as one. K separate networks trained with the
same seeds give the same result (tested), because Adam is element-wise and each model's loss
only reaches its own weights. The single-model path (one ``nn.Sequential`` per seed, trained one
after another) is kept for comparison and for plugins that want a plain module.

Initialisation matches ``nn.Linear``'s default (uniform in +-1/sqrt(fan_in) for weights and
biases), drawn per model from ``torch.Generator().manual_seed(seed)`` in layer order, so a
model's weights depend on its seed only, never on K.

This module needs only numpy and torch (it runs on a GPU machine that has nothing else).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from automl_od.components import DEVICE_ENV
from automl_od.errors import TrialFailed

#: Added to the variance (and to the training standard deviation) everywhere, as in the paper.
EPS = 1e-5
#: Network inputs are clipped to this many standard deviations so extreme values cannot
#: overflow float32 activations; scores still use the unclipped value (in float64).
INPUT_CLIP = 1e4
#: keeps the inverse error of a perfectly reconstructed labelled anomaly finite
SEMI_SUPERVISED_EPS = 1e-2

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU,
}


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto``: what the trial was assigned (``AUTOML_OD_DEVICE``), else CUDA when present, else CPU."""
    if requested == "auto":
        requested = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TrialFailed(f"device {requested!r} was asked for, but torch sees no CUDA device here")
    return torch.device(requested)


def hidden_widths(d: int, *, width: float = 1.0, depth: int | str = "auto") -> list[int]:
    """Encoder widths after the input, latent last; the decoder mirrors them.

    The paper's rule by input width d: d < 20: d/2; 20 <= d < 100: d/2, d/4; 100 <= d < 200:
    d/2, d/4, d/8; d >= 200: d/2, d/4, d/16. ``depth`` = n uses the first n halvings instead
    (d/2, d/4, ..., d/2^n); ``width`` multiplies every hidden width. Widths are at least 1.
    """
    if depth == "auto":
        divisors = [2] if d < 20 else [2, 4] if d < 100 else [2, 4, 8] if d < 200 else [2, 4, 16]
    else:
        if int(depth) < 1:
            raise ValueError(f"depth must be 'auto' or >= 1, but got {depth!r}")
        divisors = [2 ** (i + 1) for i in range(int(depth))]
    return [max(1, int(d * float(width) / divisor)) for divisor in divisors]


def layer_sizes(d: int, hidden: Sequence[int], probabilistic: bool) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every linear layer: encoder, mirrored decoder, output (2d or d)."""
    widths = [d, *hidden, *reversed(hidden[:-1])]
    out = 2 * d if probabilistic else d
    return [*zip(widths[:-1], widths[1:], strict=True), (widths[-1], out)]


def _init_layers(sizes: Sequence[tuple[int, int]], seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(int(seed))
    layers = []
    for fan_in, fan_out in sizes:
        bound = 1.0 / math.sqrt(fan_in)
        weight = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
        layers.append((weight, bias))
    return layers


class PackedAutoencoder(nn.Module):
    """K autoencoders of one shape; ``forward`` maps (K, B, d) to (K, B, out)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], seeds: Sequence[int], activation: str = "relu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        per_model = [_init_layers(sizes, seed) for seed in seeds]
        self.weights = nn.ParameterList([nn.Parameter(torch.stack([m[i][0] for m in per_model])) for i in range(len(sizes))])
        self.biases = nn.ParameterList([nn.Parameter(torch.stack([m[i][1] for m in per_model]).unsqueeze(1)) for i in range(len(sizes))])
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = self.dropout(self.activation(x))
        return x


class SingleAutoencoder(nn.Module):
    """One autoencoder as a plain ``nn.Sequential`` (the unpacked path), same init as packed."""

    def __init__(self, sizes: Sequence[tuple[int, int]], seed: int, activation: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for i, ((fan_in, fan_out), (weight, bias)) in enumerate(zip(sizes, _init_layers(sizes, seed), strict=True)):
            linear = nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                linear.weight.copy_(weight.T)
                linear.bias.copy_(bias)
            modules.append(linear)
            if i < len(sizes) - 1:
                modules.append(ACTIVATIONS[activation]())
                if dropout > 0:
                    modules.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[0]).unsqueeze(0)


def split_output(output: torch.Tensor, d: int, probabilistic: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(mu, sigma^2): the first d outputs are the means, softplus of the other d the variances."""
    if not probabilistic:
        return output, None
    return output[..., :d], nn.functional.softplus(output[..., d:])


def training_loss(x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor | None) -> torch.Tensor:
    """Per-model loss (K,): PRE (alpha = beta = 1) for a probabilistic network, else squared error;
    summed over features, averaged over rows."""
    if var is None:
        per_row = ((x - mu) ** 2).sum(-1)
    else:
        per_row = ((x - mu) ** 2 / (var + EPS) + torch.log(var + EPS)).sum(-1)
    return per_row.mean(-1)


def semi_supervised_loss(x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor | None, is_anomaly: torch.Tensor,
                         weight: float) -> torch.Tensor:
    """Per-model loss (K,) with labelled anomalies, in the spirit of Deep SAD (Ruff et al. 2020):
    the usual loss on the other rows plus ``weight`` x the mean inverse reconstruction error of
    the labelled anomalies, which pushes their error up (the error is the squared error, scaled
    by the predicted variance for a probabilistic network, so it is never negative)."""
    normal = ~is_anomaly
    if bool(normal.any()):
        loss = training_loss(x[:, normal], mu[:, normal], None if var is None else var[:, normal])
    else:  # a mini-batch of labelled anomalies only
        loss = x.new_zeros(x.shape[0])
    if bool(is_anomaly.any()):
        squared = (x[:, is_anomaly] - mu[:, is_anomaly]) ** 2
        error = (squared if var is None else squared / (var[:, is_anomaly] + EPS)).sum(-1)
        loss = loss + weight * (1.0 / (error + SEMI_SUPERVISED_EPS)).mean(-1)
    return loss


def feature_errors(target: np.ndarray, mu: np.ndarray, var: np.ndarray | None, *, alpha: float = 0.5,
                   beta: float = 2.0) -> np.ndarray:
    """Per-feature score terms (float64): APRE ``alpha (t - mu)^2 / (var + eps) + beta log(var + eps)``
    for a probabilistic network, ``(t - mu)^2`` for a plain one. Rows sum to the score."""
    diff = np.asarray(target, dtype=np.float64) - np.asarray(mu, dtype=np.float64)
    if var is None:
        return diff**2
    v = np.asarray(var, dtype=np.float64) + EPS
    return alpha * diff**2 / v + beta * np.log(v)


@dataclass
class TrainingSettings:
    """The optimisation recipe; the defaults are the paper's (Adam, lr 1e-3 halved every 1000
    steps of full-batch training, i.e. every 1000 epochs, no weight decay or dropout), except
    the epoch count (5000 there). The learning rate is halved per epoch count whatever the
    batch size, so mini-batch training does not decay it faster."""

    epochs: int = 500
    lr: float = 1e-3
    lr_halving_epochs: int = 1000
    batch_size: int | None = None  # None: full batch, one step per epoch
    activation: str = "relu"
    dropout: float = 0.0
    weight_decay: float = 0.0
    shuffle_seed: int = 0
    report_every: int = 0  # call epoch_callback every this many epochs (0: never)
    deadline: float | None = None  # time.perf_counter() value after which training stops early
    anomaly_weight: float = 1.0  # weight of the labelled anomalies' term (when train gets labels)
    threads: int | None = 1  # CPU threads while training (None: torch's own setting); see _threads_for
    losses: list[float] = field(default_factory=list)


def train(x: np.ndarray, sizes: Sequence[tuple[int, int]], seeds: Sequence[int], settings: TrainingSettings, *,
          probabilistic: bool, device: torch.device, packed: bool = True, labels: np.ndarray | None = None,
          epoch_callback: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
    """Train len(seeds) autoencoders on x (n, d; already standardised) and return them as one
    ``PackedAutoencoder`` (packed) or an ``nn.ModuleList`` of ``SingleAutoencoder`` (not packed).

    ``epoch_callback(epoch, module)`` is called every ``settings.report_every`` epochs and after
    the last one, with the module in eval mode (it may score with it). ``labels`` (1 = labelled
    anomaly) switch to :func:`semi_supervised_loss`.
    """
    data = torch.as_tensor(np.clip(x, -INPUT_CLIP, INPUT_CLIP), dtype=torch.float32, device=device)
    if packed:
        models: list[nn.Module] = [PackedAutoencoder(sizes, seeds, settings.activation, settings.dropout).to(device)]
    else:
        models = [SingleAutoencoder(sizes, seed, settings.activation, settings.dropout).to(device) for seed in seeds]
    settings.losses = []
    anomalies = None if labels is None else torch.as_tensor(np.asarray(labels) == 1, device=device)
    with _threads_for(device, settings.threads):
        for model in models:
            _fit_one(model, data, len(seeds) if packed else 1, settings, probabilistic, epoch_callback if packed else None,
                     anomalies)
    result = models[0] if packed else nn.ModuleList(models)
    if not packed and epoch_callback is not None:
        epoch_callback(settings.epochs - 1, result)
    return result


@contextlib.contextmanager
def _threads_for(device: torch.device, threads: int | None) -> Iterator[None]:
    """Train with ``threads`` CPU threads (default 1), restoring torch's setting afterwards.

    These networks are small: intra-op threads gain little, and on cores that other processes
    also use they wait for each other at every kernel. Measured on 2 busy cores (64-128-16 network,
    batch 256): 42 ms per step for 64 packed networks with 1 thread, 1,220 ms with 2; 700 x 20
    rows full batch: 2.2 ms per epoch with 1 thread, 6-30 ms with 2. A search runs one trial
    per CPU anyway."""
    if device.type != "cpu" or threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit_one(model: nn.Module, data: torch.Tensor, k: int, settings: TrainingSettings, probabilistic: bool,
             epoch_callback: Callable[[int, nn.Module], None] | None, anomalies: torch.Tensor | None = None) -> None:
    n, d = data.shape
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, foreach=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, int(settings.lr_halving_epochs)), gamma=0.5)
    batch = n if not settings.batch_size or settings.batch_size >= n else int(settings.batch_size)
    order_generator = torch.Generator().manual_seed(int(settings.shuffle_seed))
    full = data.unsqueeze(0).expand(k, n, d)
    for epoch in range(int(settings.epochs)):
        model.train()
        if batch == n:
            batches = [(full, anomalies)]
        else:
            order = torch.randperm(n, generator=order_generator).to(data.device)
            batches = [(data[rows].unsqueeze(0).expand(k, -1, d), None if anomalies is None else anomalies[rows])
                       for rows in (order[i:i + batch] for i in range(0, n, batch))]
        for xb, is_anomaly in batches:
            mu, var = split_output(model(xb), d, probabilistic)
            if is_anomaly is None:
                loss = training_loss(xb, mu, var).sum()
            else:
                loss = semi_supervised_loss(xb, mu, var, is_anomaly, settings.anomaly_weight).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        last = epoch == int(settings.epochs) - 1
        timed_out = settings.deadline is not None and time.perf_counter() > settings.deadline
        if settings.report_every and epoch % settings.report_every == 0 or last or timed_out:
            settings.losses.append(float(loss.detach()) / k)
            if epoch_callback is not None:
                model.eval()
                epoch_callback(epoch, model)
        if timed_out:
            break
    if not math.isfinite(settings.losses[-1] if settings.losses else 0.0):
        raise TrialFailed("autoencoder training diverged (loss is not finite); try a smaller learning rate")
    model.eval()


@torch.no_grad()
def reconstruct(model: nn.Module, x: np.ndarray, *, probabilistic: bool, chunk_rows: int = 65_536) -> tuple[np.ndarray, np.ndarray | None]:
    """(mu, var) of every model for x: arrays of shape (K, n, d) (var None for a plain network)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    d = x.shape[1]
    modules = list(model) if isinstance(model, nn.ModuleList) else [model]
    mus, variances = [], []
    for start in range(0, max(len(x), 1), chunk_rows):
        part = torch.as_tensor(np.clip(x[start:start + chunk_rows], -INPUT_CLIP, INPUT_CLIP), dtype=torch.float32, device=device)
        outputs = []
        for module in modules:
            k = module.weights[0].shape[0] if isinstance(module, PackedAutoencoder) else 1
            outputs.append(module(part.unsqueeze(0).expand(k, -1, d)))
        mu, var = split_output(torch.cat(outputs), d, probabilistic)
        mus.append(mu.double().cpu().numpy())
        if var is not None:
            variances.append(var.double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(mus, axis=1), (np.concatenate(variances, axis=1) if variances else None)
