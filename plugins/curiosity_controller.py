"""AutoOD's curiosity-guided controller (Li et al., arXiv 2006.11321) as an Optuna sampler.

Define-by-run: Optuna asks ``sample_independent`` once per parameter in the order the space
asks (detector first, then its own parameters); the relative search space is always empty.
Per trial an LSTM reads a learned start embedding, then the embedding of each previous
decision; a head keyed by (parameter name, repr of its distribution) gives the next decision's
distribution, so a changed range or choice list gets a fresh head and embedding. Parameters the
sampler did not choose (enqueued warm starts, fixed values) are fed to the LSTM before the next
decision; single-value distributions are no decision.

Actions: one per categorical choice. An int or stepped-float grid of at most ``n_bins`` values
has one action per value; a larger grid is cut into ``n_bins`` contiguous groups (log-spaced when
``log``), the value drawn uniformly from the group's grid points; continuous floats use ``n_bins``
equal-width (log-space when ``log``) bins, the value drawn uniformly (log-uniformly) inside.

Learning (``after_trial``, in whatever order trials finish): the decisions are rebuilt from the
trial's parameters and replayed through the LSTM, so pending trials hold no graph. Rewards are
the objective (negated when minimising), standardised by the mean and standard deviation of all
completed rewards (1 while they are all equal). A failed or pruned trial gets ``failure_penalty``
if set, else the worst completed reward minus one standard deviation; before any trial has
completed, a failure teaches nothing. REINFORCE: loss = -(R - b) / std * sum log pi -
entropy_coef * entropy, b an exponential moving average (``baseline_decay``) of R; Adam.

Curiosity (VIME, Houthooft et al. 2016): a Bayesian regressor with factorised Gaussian weights
predicts the standardised reward from a hashed bag of the decisions (128 inputs). Each new
observation takes a few steps on -log p(r | x, w) + KL(q || q_before) from the current posterior
(online variational Bayes); the information gain is KL(q_after || q_before) in closed form,
divided by the mean of the previous 32 gains (VIME divides by a running median). R = r + eta *
eta_decay^n * IG * std, n the number of completed trials; failures get no bonus.

Self-imitation (Oh et al. 2018): the ``buffer_size`` best completed episodes are kept; after each
on-policy update, up to ``sil_updates`` steps sample ``sil_batch_size`` episodes with priority
proportional to max(R - V, 0) and minimise -log pi * max(R - V, 0) + 0.5 * max(R - V, 0)^2, V a
learned scalar (the start state's value, also regressed on every standardised reward).

``curiosity=False`` / ``self_imitation=False`` switch the parts off for the ablation;
``startup_trials`` = n samples the first n trials uniformly over the actions (the policy still
learns from them). The defaults (lr 0.01, entropy_coef 0.1, one SIL update per result) were
chosen on the controller table (``benchmarks/controller_ablation.py``, controller seeds 6-8;
the README reports seeds 1-5): the first settings (lr 0.05, entropy 0.01, 2 SIL updates)
stopped exploring after about 15 trials. optuna and
torch are imported only when a sampler is built (the registry loads this plugin without them);
``CuriositySampler`` is created then, as a subclass of Optuna's BaseSampler, and found by pickle
through the module's ``__getattr__``. Torch runs single-threaded inside the sampler's calls
(restored after): its thread pool made these tiny updates 4x slower on 2 busy cores.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component

if TYPE_CHECKING:
    import torch
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

ENCODING_SIZE = 128
Episode = list[tuple[str, int]]  # (decision key, action), in the order the space asked


def gaussian_kl(mu_new: torch.Tensor, sigma_new: torch.Tensor, mu_old: torch.Tensor,
                sigma_old: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_new, sigma_new^2) || N(mu_old, sigma_old^2)) summed over independent weights."""
    import torch

    return torch.sum(torch.log(sigma_old / sigma_new)
                     + (sigma_new**2 + (mu_new - mu_old) ** 2) / (2 * sigma_old**2) - 0.5)


def encode(episode: Episode) -> np.ndarray:
    """A fixed-length hashed bag of (decision, action) pairs (crc32: the same in every process)."""
    x = np.zeros(ENCODING_SIZE, dtype=np.float32)
    for key, action in episode:
        x[zlib.crc32(f"{key}={action}".encode()) % ENCODING_SIZE] += 1.0
    return x


@dataclass(frozen=True)
class ActionSpace:
    """A distribution as discrete actions: choices, groups of grid points (``starts``) or bins."""

    n_choices: int = 0
    low: float = 0.0
    high: float = 0.0
    step: float = 1.0
    is_int: bool = False
    starts: tuple[int, ...] = ()  # first grid index of each group
    n_grid: int = 0
    edges: tuple[float, ...] = ()
    log: bool = False

    @property
    def n_actions(self) -> int:
        return self.n_choices or len(self.starts) or len(self.edges) - 1

    def value(self, action: int, rng: np.random.Generator) -> Any:
        """A value inside the action's group or bin (for categoricals, the choice's index)."""
        if self.n_choices:
            return action
        if self.starts:
            end = self.starts[action + 1] if action + 1 < len(self.starts) else self.n_grid
            k = int(rng.integers(self.starts[action], end))
            return int(self.low) + k * int(self.step) if self.is_int else min(self.low + k * self.step, self.high)
        lo, hi = self.edges[action], self.edges[action + 1]
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.log else rng.uniform(lo, hi)
        return float(min(max(x, self.low), self.high))

    def action_of(self, internal: float) -> int:
        """The action a value (in Optuna's internal representation) belongs to."""
        if self.n_choices:
            return int(internal)
        if self.starts:
            return int(np.searchsorted(self.starts, round((internal - self.low) / self.step), side="right")) - 1
        return min(max(int(np.searchsorted(self.edges, internal, side="right")) - 1, 0), len(self.edges) - 2)


def action_space(distribution: BaseDistribution, n_bins: int) -> ActionSpace:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return ActionSpace(n_choices=len(distribution.choices))
    if not isinstance(distribution, IntDistribution | FloatDistribution):
        raise ValueError(f"the curiosity controller cannot sample {distribution!r}; use float, int or categorical")
    low, high, log = distribution.low, distribution.high, distribution.log
    is_int = isinstance(distribution, IntDistribution)
    if not is_int and distribution.step is None:
        edges = np.geomspace(low, high, n_bins + 1) if log else np.linspace(low, high, n_bins + 1)
        return ActionSpace(low=low, high=high, edges=(low, *map(float, edges[1:-1]), high), log=log)
    step = float(distribution.step or 1)
    n_grid = int(math.floor((high - low) / step + 1e-8)) + 1
    if n_grid <= n_bins:
        starts = np.arange(n_grid)
    elif log:  # Optuna allows log only with step 1
        starts = np.unique(np.r_[0, np.ceil(np.geomspace(low, high, n_bins + 1)[1:-1] - low - 1e-9)])
    else:
        starts = np.unique(np.floor(np.linspace(0, n_grid, n_bins + 1)[:-1]))
    return ActionSpace(low=low, high=high, step=step, is_int=is_int, starts=tuple(map(int, starts)), n_grid=n_grid)


class BayesianRewardModel:
    """A one-hidden-layer reward regressor with factorised Gaussian weights (VIME's model)."""

    def __init__(self, generator: torch.Generator, n_inputs: int = ENCODING_SIZE, n_hidden: int = 16,
                 init_sigma: float = 0.1, noise_sigma: float = 0.5, lr: float = 0.5, n_steps: int = 3,
                 n_samples: int = 4) -> None:
        import torch

        self.generator, self.noise_sigma, self.lr = generator, noise_sigma, lr
        self.n_steps, self.n_samples = n_steps, n_samples
        shapes = [(n_inputs, n_hidden), (1, n_hidden), (n_hidden, 1), (1, 1)]
        self.mu = [(0.1 * torch.randn(s, generator=generator)).requires_grad_() for s in shapes]
        self.rho = [torch.full(s, math.log(math.expm1(init_sigma))).requires_grad_() for s in shapes]

    def posterior(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Detached (means, standard deviations) of the weights."""
        import torch

        return [m.detach().clone() for m in self.mu], [torch.nn.functional.softplus(r).detach() for r in self.rho]

    def kl_from(self, mu_old: list[torch.Tensor], sigma_old: list[torch.Tensor]) -> torch.Tensor:
        """KL(current posterior || the given one)."""
        import torch

        sigmas = [torch.nn.functional.softplus(r) for r in self.rho]
        return torch.stack([gaussian_kl(*args) for args in zip(self.mu, sigmas, mu_old, sigma_old, strict=True)]).sum()

    def update(self, x: np.ndarray, y: float) -> float:
        """Learn one (encoding, standardised reward) pair; return the information gain.

        Steps are preconditioned by the KL term's inverse curvature (sigma_old^2 for the means, as
        VIME's second-order step), which keeps them stable however small the sigmas get."""
        import torch

        (mu_old, sigma_old), rho_old = self.posterior(), [r.detach().clone() for r in self.rho]
        params = [*self.mu, *self.rho]
        scales = [*(s**2 for s in sigma_old),
                  *(s**2 / (2 * torch.sigmoid(r) ** 2) for s, r in zip(sigma_old, rho_old, strict=True))]
        inputs, target = torch.as_tensor(x, dtype=torch.float32).view(1, 1, -1), torch.tensor(float(y))
        for _ in range(self.n_steps):
            w = [m + torch.nn.functional.softplus(r) * torch.randn((self.n_samples, *m.shape), generator=self.generator)
                 for m, r in zip(self.mu, self.rho, strict=True)]
            prediction = (torch.relu(inputs @ w[0] + w[1]) @ w[2] + w[3]).view(-1)
            loss = 0.5 * (((prediction - target) / self.noise_sigma) ** 2).mean() + self.kl_from(mu_old, sigma_old)
            with torch.no_grad():
                for p, g, c in zip(params, torch.autograd.grad(loss, params), scales, strict=True):
                    p -= self.lr * c * g
        with torch.no_grad():
            gain = float(self.kl_from(mu_old, sigma_old))
            if not math.isfinite(gain):  # keep the old belief rather than a broken one
                for p, old in zip(params, [*mu_old, *rho_old], strict=True):
                    p.copy_(old)
                return 0.0
        return gain


@dataclass
class _Pending:
    """A trial being sampled: LSTM state, next input, how many of its parameters were fed."""

    hc: Any = None
    x: Any = None
    n_fed: int = 0


class CuriosityController:
    """The controller's state and learning; ``CuriositySampler`` adds Optuna's BaseSampler."""

    def __init__(self, seed: int | None = None, *, hidden_size: int = 32, n_bins: int = 8, lr: float = 0.01,
                 entropy_coef: float = 0.1, baseline_decay: float = 0.8, eta: float = 0.3, eta_decay: float = 0.97,
                 sil_updates: int = 1, sil_batch_size: int = 4, buffer_size: int = 64,
                 failure_penalty: float | None = None, curiosity: bool = True, self_imitation: bool = True,
                 startup_trials: int = 0) -> None:
        import torch

        for name, value in {"hidden_size": hidden_size, "n_bins": n_bins, "sil_batch_size": sil_batch_size,
                            "buffer_size": buffer_size}.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, but got {name}={value}")
        if not (0 <= baseline_decay < 1 and 0 < eta_decay <= 1):
            raise ValueError("`0 <= baseline_decay < 1` and `0 < eta_decay <= 1` must hold, but got "
                             f"(baseline_decay={baseline_decay}, eta_decay={eta_decay})")
        self.n_bins, self.entropy_coef, self.baseline_decay = n_bins, entropy_coef, baseline_decay
        self.eta, self.eta_decay, self.sil_updates, self.sil_batch_size = eta, eta_decay, sil_updates, sil_batch_size
        self.buffer_size, self.failure_penalty = buffer_size, failure_penalty
        self.curiosity, self.self_imitation, self.startup_trials = curiosity, self_imitation, startup_trials
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator().manual_seed(int(self._rng.integers(2**31)))
        self._embed = 16
        with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG: leave it alone
            self._cell = torch.nn.LSTMCell(self._embed, hidden_size)
        with torch.no_grad():
            for p in self._cell.parameters():
                p.uniform_(-hidden_size**-0.5, hidden_size**-0.5, generator=self._gen)
        self._start = torch.nn.Parameter(0.1 * torch.randn(1, self._embed, generator=self._gen))
        self._value = torch.nn.Parameter(torch.zeros(()))
        self._optimizer = torch.optim.Adam([*self._cell.parameters(), self._start, self._value], lr=lr, foreach=True)
        self._heads: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # weight, bias, embeddings
        self._spaces: dict[str, ActionSpace] = {}
        self._model = BayesianRewardModel(self._gen) if curiosity else None
        self._pending: dict[int, _Pending] = {}
        self._rewards: list[float] = []
        self._gains: list[float] = []
        self._baseline: float | None = None
        self._buffer: list[tuple[float, Episode]] = []
        #: (trial number, reward learned from (the penalty for a failure), intrinsic bonus)
        self.history: list[tuple[int, float, float]] = []
        self._lock = threading.Lock()

    # -- Optuna's sampler interface ----------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """Only direct callers pass a space: it is sampled as one sequence, in its order."""
        _single_objective(study)
        with self._lock, _one_torch_thread():
            pending = _Pending()
            return {name: self._decide(pending, name, distribution) for name, distribution in search_space.items()}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        import torch

        _single_objective(study)
        with self._lock, _one_torch_thread():
            pending = self._pending.setdefault(trial.number, _Pending())
            while len(self._pending) > 10_000:  # trials asked but never told
                del self._pending[next(iter(self._pending))]
            for key, action in self._episode(trial, start=pending.n_fed):  # set without this sampler
                with torch.no_grad():
                    self._logits(pending, key)
                pending.x = self._heads[key][2][action].detach().view(1, -1)
            pending.n_fed = len(trial.distributions) + 1  # Optuna stores this parameter next
            return self._decide(pending, param_name, param_distribution, uniform=trial.number < self.startup_trials)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        if len(study.directions) > 1:
            return
        with self._lock, _one_torch_thread():
            self._pending.pop(trial.number, None)
            reward = None
            if state == TrialState.COMPLETE and values is not None and math.isfinite(values[0]):
                reward = float(values[0] if study.direction == StudyDirection.MAXIMIZE else -values[0])
                self._rewards.append(reward)
            episode = self._episode(trial)
            if episode:
                self._learn(trial.number, episode, reward)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()

    # -- policy ------------------------------------------------------------------------------
    def _key(self, name: str, distribution: BaseDistribution) -> str:
        """The decision's key; a new one gets its own head and action embeddings."""
        import torch

        key = f"{name}|{distribution!r}"
        if key not in self._spaces:
            space = action_space(distribution, self.n_bins)
            n, hidden = space.n_actions, self._cell.hidden_size
            head = (torch.nn.Parameter(0.01 * torch.randn(n, hidden, generator=self._gen)),
                    torch.nn.Parameter(torch.zeros(n)),
                    torch.nn.Parameter(0.1 * torch.randn(n, self._embed, generator=self._gen)))
            self._optimizer.add_param_group({"params": list(head)})
            self._spaces[key], self._heads[key] = space, head
        return key

    def _episode(self, trial: FrozenTrial, start: int = 0) -> Episode:
        """The trial's decisions from its parameters (in the order asked), after the first ``start``."""
        episode = []
        for name, distribution in list(trial.distributions.items())[start:]:
            if not distribution.single():
                key = self._key(name, distribution)
                episode.append((key, self._spaces[key].action_of(distribution.to_internal_repr(trial.params[name]))))
        return episode

    def _logits(self, pending: _Pending, key: str) -> torch.Tensor:
        pending.hc = self._cell(self._start if pending.x is None else pending.x, pending.hc)
        weight, bias, _ = self._heads[key]
        return pending.hc[0] @ weight.T + bias

    def _decide(self, pending: _Pending, name: str, distribution: BaseDistribution, uniform: bool = False) -> Any:
        import torch

        if distribution.single():
            internal = distribution.low if hasattr(distribution, "low") else 0  # the one value or choice
            return distribution.to_external_repr(internal)
        key = self._key(name, distribution)
        with torch.no_grad():
            probs = torch.softmax(self._logits(pending, key), -1).view(-1).numpy().astype(np.float64)
        if uniform:  # start-up trials explore uniformly over the actions; the policy still learns from them
            probs = np.ones_like(probs)
        action = int(self._rng.choice(len(probs), p=probs / probs.sum()))
        pending.x = self._heads[key][2][action].detach().view(1, -1)
        value = self._spaces[key].value(action, self._rng)
        return distribution.to_external_repr(value) if self._spaces[key].n_choices else value

    def _replay(self, episodes: list[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per episode, the summed log-probability and entropy of its actions under the policy
        (one batched LSTM pass; each head is applied once to all the states that use it)."""
        import torch

        n, length = len(episodes), max(map(len, episodes))
        x, hc, hidden, padding = self._start.expand(n, -1), None, [], torch.zeros(self._embed)
        for t in range(length):
            hc = self._cell(x, hc)
            hidden.append(hc[0])
            x = torch.stack([self._heads[ep[t][0]][2][ep[t][1]] if t < len(ep) else padding for ep in episodes])
        states = torch.stack(hidden, 1).reshape(n * length, -1)  # row i * length + t
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for i, episode in enumerate(episodes):
            for t, (key, action) in enumerate(episode):
                groups.setdefault(key, ([], []))[0].append(i * length + t)
                groups[key][1].append(action)
        log_prob, entropy = torch.zeros(n), torch.zeros(n)
        for key, (rows, actions) in groups.items():
            weight, bias, _ = self._heads[key]
            log_p = torch.log_softmax(states[rows] @ weight.T + bias, -1)
            owners = torch.tensor(rows) // length
            log_prob = log_prob.index_add(0, owners, log_p[torch.arange(len(rows)), actions])
            entropy = entropy.index_add(0, owners, -(log_p.exp() * log_p).sum(-1))
        return log_prob, entropy

    # -- learning ----------------------------------------------------------------------------
    def _stats(self) -> tuple[float, float]:
        std = float(np.std(self._rewards)) if self._rewards else 0.0
        return (float(np.mean(self._rewards)) if self._rewards else 0.0), (std if std > 1e-12 else 1.0)

    def _learn(self, number: int, episode: Episode, reward: float | None) -> None:
        completed, (mean, std), gain = reward is not None, self._stats(), 0.0
        if reward is None:
            if not self._rewards:
                return
            reward = self.failure_penalty if self.failure_penalty is not None else min(self._rewards) - std
        elif self._model is not None:
            gain = self._model.update(encode(episode), (reward - mean) / std)
            scale = float(np.mean(self._gains[-32:])) if self._gains else gain
            self._gains.append(gain)
            gain = gain / scale if scale > 1e-12 else 0.0
        bonus = self.eta * self.eta_decay ** max(len(self._rewards) - 1, 0) * gain * std
        total = reward + bonus
        self.history.append((number, reward, bonus))
        baseline = total if self._baseline is None else self._baseline
        self._baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * total
        log_prob, entropy = self._replay([episode])
        loss = (-(total - baseline) / std * log_prob[0] - self.entropy_coef * entropy[0]
                + 0.5 * ((reward - mean) / std - self._value) ** 2)
        self._step(loss)
        if self.self_imitation and completed:
            self._buffer.append((reward, episode))
            self._buffer.sort(key=lambda item: -item[0])
            del self._buffer[self.buffer_size:]
            for _ in range(self.sil_updates):
                if not self._self_imitation_step():
                    break

    def _step(self, loss: torch.Tensor) -> None:
        self._optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self._optimizer.step()

    def self_imitation_advantages(self) -> np.ndarray:
        """max(R - V, 0) per buffered episode (standardised reward minus the learned value)."""
        (mean, std), value = self._stats(), float(self._value.detach())
        return np.array([max((r - mean) / std - value, 0.0) for r, _ in self._buffer])

    def _self_imitation_step(self) -> int:
        """One SIL update on episodes sampled by positive advantage; returns how many have one."""
        import torch

        advantages = self.self_imitation_advantages()
        positive = np.flatnonzero(advantages > 0)
        if not len(positive):
            return 0
        picks = self._rng.choice(positive, size=min(self.sil_batch_size, len(positive)), replace=False,
                                 p=advantages[positive] / advantages[positive].sum())
        mean, std = self._stats()
        returns = torch.tensor([(self._buffer[i][0] - mean) / std for i in picks], dtype=torch.float32)
        clipped = torch.clamp(returns - self._value, min=0.0)
        log_prob, _ = self._replay([self._buffer[i][1] for i in picks])
        self._step((-log_prob * clipped.detach() + 0.5 * clipped**2).sum() / len(picks))
        return len(positive)

    # -- pickling (Ray Tune saves the searcher for --resume) --------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


def _single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(f"the curiosity controller optimises one objective, but the study has {len(study.directions)}; "
                         "use a multi-objective sampler such as NSGAIISampler")


def _sampler_class() -> type:
    """Build (once) the BaseSampler subclass; optuna is imported only when a sampler is wanted."""
    if "CuriositySampler" not in globals():
        from optuna.samplers import BaseSampler

        globals()["CuriositySampler"] = type(
            "CuriositySampler", (CuriosityController, BaseSampler),
            {"__module__": __name__, "__doc__": "The AutoOD curiosity-guided controller as an Optuna sampler."})
    return globals()["CuriositySampler"]  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "CuriositySampler":  # created on first use; imports and pickle find it here
        return _sampler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def curiosity_sampler(seed: int | None = None, **settings: Any) -> Any:
    """A CuriositySampler; ``settings`` are CuriosityController's keyword arguments."""
    return _sampler_class()(seed, **settings)


@hookimpl
def register_controllers() -> list[Component]:
    return [Component("curiosity", "controller", curiosity_sampler, {}, Capabilities(),
                      "AutoOD curiosity-guided controller (LSTM policy, VIME information gain, self-imitation)")]
