"""DDPG hyperparameters, one documented field each.

The defaults are tuned on Pendulum-v1 in the single-process mode for both
sample efficiency and wall-clock on one CPU thread, where a learner update
of the 400-300 networks costs a few milliseconds and an environment step a
fraction of one, so wall-clock is about (number of updates) x (cost of one):

* ``critic_action_layer=0``: with the action joining at the second layer
  (the paper's layout) the wide critic's early dQ/da is nearly the same in
  every state; the actor follows it into a bound within a few hundred
  updates, its tanh saturates and it does not come back (Pendulum: 0 of 3
  seeds solved in 10k steps, against 3 of 3 with the action at the input).
* ``n_step=3`` propagates the dense reward faster per update than one-step
  targets (solved at 7.6k env steps on 3 of 3 seeds, against 7.6k-10k with
  n=1; n=5 was no better).
* ``batch_size=32`` with ``samples_per_insert=16`` (one update per two env
  steps): the updates needed are set mostly by the slow targets (``tau``),
  so one update per env step saves few env steps for about 1.7x the
  wall-clock per env step, and one per four learned too slowly (unsolved
  at 10k steps). Batches of 32 learned about as fast as 64 per update at
  about 0.8x the cost.
* ``critic_learning_rate=2e-3`` learned faster early than 1e-3 on every
  seed tried; ``actor_learning_rate=1e-4`` is the paper's (3e-4 was no
  better).
* Gaussian noise of 0.2 half-ranges explored as well as 0.1 here, and the
  paper's OU noise (``noise_type='ou'``, same sigma) as well as Gaussian.
* ``actor_pre_activation_weight=0.1``, a penalty w * mean(sum x^2) on the
  actor's pre-tanh output x (rlkit's DDPG has the same term,
  ``policy_pre_activation_weight``). Without it, seed 0 of ``bench peers``
  settled at -204 to -212 whatever else changed (discount 0.97 to 0.995,
  noise 0.1 to 0.4 or OU, tau 0.01, n = 1, batch 64, one update per env
  step, either learning rate), where the best control of its 10 evaluation
  start states scores about -190 (dynamic programming on a fine grid). The
  lost return was in two swing-up starts: there 33-43% of the actor's
  pre-tanh outputs were past |x| = 4, where the tanh's slope is below 1e-3,
  so the policy gradient could not move the switching times of its
  bang-bang control. With w = 0.1 at most 5% are, and seed 0 reaches -198
  at 12k env steps; w = 0.03 reached -201, w = 0.3 -205 (it also keeps
  actions off the bounds), and a penalty only beyond |x| = 2 or 3 reached
  -200 to -202. The price: on seeds 3-5 it solved at 6k/6k/6k env steps,
  against 6k/4k/4k without it (the same final returns).

* ``(400, 300)`` hidden units for both networks, the paper's. Smaller
  networks update faster (2.1 ms against 2.9 ms per update at 256-256 on one
  CPU thread) but were less reliable: 256-256 at w = 0.1 left seed 0 at
  -201.8; at w = 0.2 it solved seeds 0-7 and 9 (median 6.6 s on seeds 0-6,
  against 8.8 s with the default) but not seed 8 (-202 to -207 from 8k to
  20k env steps), which the default solves at 8k. The default solved seeds 0-9
  in the single-process mode (seeds 0-6 in BENCHMARKS.md's ``bench peers``
  runs, 7-9 at 6k/8k/4k env steps in the sweep of the 256-256 runs).

* With several distributed actors, each explores at its own scale
  (``actor_noise_scales``): a spread around ``noise_sigma`` puts both wider
  and narrower exploration in the replay, as Ape-X's per-actor epsilons do
  for DQN (Horgan et al. 2018; RLlib's ``PerWorkerGaussianNoise`` applies
  Ape-X's epsilon table itself to the noise scale, which leaves most actors
  with far less noise than one actor would have; the spread here stays
  within 2x of the tuned sigma either way).

Harder tasks (MuJoCo) are usually run with a larger replay, a
``min_replay_size`` of 10k or more, batches of 256 and about one update per
environment step.
"""

from __future__ import annotations

import dataclasses

from distrl.agents.off_policy import OffPolicyConfig
from distrl.utils.config import doc, in_unit_interval, non_negative, positive, require

NOISE_TYPES = ("gaussian", "ou")

#: How the actors of a distributed run scale their noise (``Config.actor_noise_scales``).
ACTOR_NOISE_SCALES = ("spread", "same")


@dataclasses.dataclass(frozen=True)
class Config(OffPolicyConfig):
    """Deep Deterministic Policy Gradient (Lillicrap et al. 2016) with n-step returns."""

    batch_size: int = OffPolicyConfig.field_with_default("batch_size", 32)
    samples_per_insert: float = OffPolicyConfig.field_with_default("samples_per_insert", 16.0)
    actor_learning_rate: float = doc(1e-4, "Adam step size of the actor mu(s).")
    critic_learning_rate: float = doc(2e-3, "Adam step size of the critic Q(s, a).")
    tau: float = doc(0.005, "Polyak rate of both target networks: theta' <- (1 - tau) theta' + tau theta per update.")
    actor_hidden_sizes: tuple[int, ...] = doc((400, 300), "Units per hidden layer of the actor MLP.")
    critic_hidden_sizes: tuple[int, ...] = doc((400, 300), "Units per hidden layer of the critic MLP.")
    critic_action_layer: int = doc(0, "Critic layer the action enters at: 0 = concatenated with the observation at the input, 1 = at the second layer, ...")
    noise_type: str = doc("gaussian", "Exploration noise: 'gaussian' (independent per step) or 'ou' (Ornstein-Uhlenbeck, reset every episode).")
    noise_sigma: float = doc(0.2, "Noise scale as a fraction of the action half-range (high - low) / 2; Gaussian std, or OU sigma.")
    actor_noise_scales: str = doc(
        "spread", "Noise of a distributed run's actors: 'spread' = with N > 1 actors, actor i scales noise_sigma "
                  "by 2 ** (1 - 2 i / (N - 1)), from 2x down to 0.5x (one actor: 1x); 'same' = every actor "
                  "uses noise_sigma (the single-process mode always does).")
    ou_theta: float = doc(0.15, "OU mean-reversion rate theta (per unit time).")
    ou_dt: float = doc(1e-2, "OU time step per env step; the noise decorrelates over about 1 / (theta * dt) steps.")
    actor_pre_activation_weight: float = doc(
        0.1, "Weight w of the penalty w * mean(sum x^2) on the actor's pre-tanh output x (0: none); keeps "
             "actions off the flat ends of the tanh, where the policy gradient vanishes.")
    max_grad_norm: float | None = doc(None, "Clip each network's global gradient norm to this value (None: no clipping).")
    log_every: int = doc(100, "Learner updates between loss logs.")

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "actor_learning_rate", "critic_learning_rate", "noise_sigma", "ou_theta", "ou_dt",
                 "log_every")
        non_negative(self, "critic_action_layer", "actor_pre_activation_weight")
        in_unit_interval(self, "tau")
        require(self.noise_type in NOISE_TYPES, "Config", "noise_type", self.noise_type,
                f"be one of {', '.join(NOISE_TYPES)}")
        require(self.actor_noise_scales in ACTOR_NOISE_SCALES, "Config", "actor_noise_scales",
                self.actor_noise_scales, f"be one of {', '.join(ACTOR_NOISE_SCALES)}")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "Config", "max_grad_norm",
                self.max_grad_norm, "be > 0 or None")
        for name in ("actor_hidden_sizes", "critic_hidden_sizes"):
            sizes = getattr(self, name)
            require(len(sizes) > 0 and all(h > 0 for h in sizes), "Config", name, sizes,
                    "be a non-empty tuple of positive ints")
        require(self.critic_action_layer <= len(self.critic_hidden_sizes), "Config", "critic_action_layer",
                self.critic_action_layer,
                f"be <= len(critic_hidden_sizes) ({len(self.critic_hidden_sizes)})")
