"""DQN hyperparameters, one documented field each.

Defaults are tuned for small vector-observation tasks (CartPole-v1 in the
single-process mode: solved in 13k-15k env steps, see BENCHMARKS.md); image
tasks want a larger replay and a lower learning rate. The target period counts
learner updates: with 0.5 updates per env step, 128 updates is 256 env steps,
the effective period of stable-baselines3's tuned CartPole setting. The
replay fields (batch, n-step, replay sizes and ratio, adder batch) are
``OffPolicyConfig``'s.
"""

from __future__ import annotations

import dataclasses

from distrl.agents.off_policy import OffPolicyConfig
from distrl.utils.config import doc, in_unit_interval, non_negative, positive, require

#: How the actors of a distributed run choose their epsilons (``Config.actor_epsilons``).
ACTOR_EPSILONS = ("apex", "schedule")


@dataclasses.dataclass(frozen=True)
class Config(OffPolicyConfig):
    """Deep Q-Network (Mnih et al. 2015) with double Q-learning and n-step returns."""

    learning_rate: float = doc(2.3e-3, "Adam step size.")
    adam_eps: float = doc(1e-8, "Adam epsilon (numerical floor of the second-moment estimate).")
    target_update_period: int = doc(128, "Learner updates between hard copies of the online net into the target net.")
    epsilon_start: float = doc(1.0, "Exploration epsilon at an actor's first env step (the schedule).")
    epsilon_end: float = doc(0.04, "Exploration epsilon after the decay.")
    epsilon_decay_steps: int = doc(8_000, "Env steps of an actor over which epsilon decays linearly from start to end.")
    actor_epsilons: str = doc(
        "apex", "Epsilons of a distributed run's actors: 'apex' = with N > 1 actors, actor i keeps "
                "0.4 ** (1 + 7 i / (N - 1)) (Ape-X, Horgan et al. 2018), one actor follows the schedule; "
                "'schedule' = every actor follows the schedule (the single-process mode always does); "
                "an actor Ray restarts begins its schedule again.")
    double_q: bool = doc(True, "Select the bootstrap action with the online net, evaluate it with the target net.")
    huber_delta: float = doc(1.0, "Huber loss threshold (TD errors beyond it get a linear penalty).")
    max_grad_norm: float | None = doc(10.0, "Clip the global gradient norm to this value (None: no clipping).")
    hidden_sizes: tuple[int, ...] = doc(
        (128, 128), "Units per hidden layer of the MLP torso; empty: the head reads the encoder's features "
                    "(the Nature DQN, whose CNN ends in a 512-unit layer).")
    dueling: bool = doc(False, "Use a dueling head: Q = V + A - mean(A).")
    prioritized: bool = doc(False, "Prioritized replay (Schaul et al. 2016) instead of uniform sampling.")
    priority_exponent: float = doc(0.6, "Prioritized replay alpha: P(i) ~ p_i ** alpha.")
    importance_sampling_exponent: float = doc(0.4, "Prioritized replay beta for importance weights (N P(i)) ** -beta.")
    priority_eps: float = doc(1e-6, "Added to |TD error| so no priority is zero.")
    actor_priorities: bool = doc(
        False, "With prioritized replay, actors give each new transition its n-step |TD error| under their "
               "own network as its initial priority (Ape-X, Horgan et al. 2018) instead of the table's maximum "
               "priority; see distrl/agents/dqn/priorities.py.")
    log_every: int = doc(100, "Learner updates between loss logs.")

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "learning_rate", "adam_eps", "target_update_period", "log_every", "huber_delta")
        non_negative(self, "epsilon_decay_steps", "priority_exponent", "importance_sampling_exponent",
                     "priority_eps")
        in_unit_interval(self, "epsilon_start", "epsilon_end")
        require(self.actor_epsilons in ACTOR_EPSILONS, "Config", "actor_epsilons", self.actor_epsilons,
                f"be one of {', '.join(ACTOR_EPSILONS)}")
        require(not self.actor_priorities or self.prioritized, "Config", "actor_priorities",
                self.actor_priorities, "be false unless prioritized is true (uniform replay has no priorities)")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "Config", "max_grad_norm",
                self.max_grad_norm, "be > 0 or None")
        require(all(h > 0 for h in self.hidden_sizes), "Config", "hidden_sizes", self.hidden_sizes,
                "be a tuple of positive ints")
