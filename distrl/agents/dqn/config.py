"""DQN hyperparameters, one documented field each.

Defaults are tuned for small vector-observation tasks (CartPole-v1 in the
single-process mode: solved in 13k-15k env steps, see BENCHMARKS.md); image
tasks want a larger replay and a lower learning rate. The target period counts
learner updates: with 0.5 updates per env step, 128 updates is 256 env steps,
the effective period of stable-baselines3's tuned CartPole setting.
"""

from __future__ import annotations

import dataclasses

from distrl.utils.config import doc, in_unit_interval, non_negative, positive, require


@dataclasses.dataclass(frozen=True)
class Config:
    """Deep Q-Network (Mnih et al. 2015) with double Q-learning and n-step returns."""

    learning_rate: float = doc(2.3e-3, "Adam step size.")
    adam_eps: float = doc(1e-8, "Adam epsilon (numerical floor of the second-moment estimate).")
    batch_size: int = doc(64, "Transitions per learner update.")
    discount: float = doc(0.99, "Agent discount gamma applied per environment step.")
    n_step: int = doc(3, "Steps summed into each transition's return before bootstrapping.")
    target_update_period: int = doc(128, "Learner updates between hard copies of the online net into the target net.")
    epsilon_start: float = doc(1.0, "Exploration epsilon at the first env step (single-process mode).")
    epsilon_end: float = doc(0.04, "Exploration epsilon after the decay.")
    epsilon_decay_steps: int = doc(8_000, "Env steps over which epsilon decays linearly from start to end.")
    double_q: bool = doc(True, "Select the bootstrap action with the online net, evaluate it with the target net.")
    huber_delta: float = doc(1.0, "Huber loss threshold (TD errors beyond it get a linear penalty).")
    max_grad_norm: float | None = doc(10.0, "Clip the global gradient norm to this value (None: no clipping).")
    hidden_sizes: tuple[int, ...] = doc((128, 128), "Units per hidden layer of the MLP torso.")
    dueling: bool = doc(False, "Use a dueling head: Q = V + A - mean(A).")
    max_replay_size: int = doc(100_000, "Replay capacity in transitions (oldest evicted first).")
    min_replay_size: int = doc(1_000, "Transitions in replay before learning starts.")
    samples_per_insert: float = doc(32.0, "Transitions sampled per transition inserted (replay ratio).")
    samples_per_insert_tolerance: float = doc(0.1, "Allowed drift of the replay ratio, as a fraction of samples_per_insert * min_replay_size.")
    prioritized: bool = doc(False, "Prioritized replay (Schaul et al. 2016) instead of uniform sampling.")
    priority_exponent: float = doc(0.6, "Prioritized replay alpha: P(i) ~ p_i ** alpha.")
    importance_sampling_exponent: float = doc(0.4, "Prioritized replay beta for importance weights (N P(i)) ** -beta.")
    priority_eps: float = doc(1e-6, "Added to |TD error| so no priority is zero.")
    adder_batch_size: int = doc(16, "Transitions an adder buffers before one replay insert.")
    variable_update_period: int = doc(1, "Actor env steps between checks for newer weights.")
    log_every: int = doc(100, "Learner updates between loss logs.")

    def __post_init__(self) -> None:
        positive(self, "learning_rate", "adam_eps", "batch_size", "n_step", "target_update_period",
                 "max_replay_size", "min_replay_size", "samples_per_insert", "adder_batch_size",
                 "variable_update_period", "log_every", "huber_delta")
        non_negative(self, "epsilon_decay_steps", "samples_per_insert_tolerance", "priority_exponent",
                     "importance_sampling_exponent", "priority_eps")
        in_unit_interval(self, "discount", "epsilon_start", "epsilon_end")
        require(self.min_replay_size >= self.batch_size, "Config", "min_replay_size", self.min_replay_size,
                f"be >= batch_size ({self.batch_size})")
        require(self.min_replay_size <= self.max_replay_size, "Config", "min_replay_size", self.min_replay_size,
                f"be <= max_replay_size ({self.max_replay_size})")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "Config", "max_grad_norm",
                self.max_grad_norm, "be > 0 or None")
        require(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes), "Config",
                "hidden_sizes", self.hidden_sizes, "be a non-empty tuple of positive ints")
