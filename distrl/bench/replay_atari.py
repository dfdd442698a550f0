"""Replay memory and throughput for DQN Atari transitions: plain layout against deduplicated frames.

Transitions are what a DQN agent stores: observation and next_observation
uint8 [4, 84, 84], action int64, reward and discount float32, extras
{'policy_version': int64}, made by the real ``NStepTransitionAdder`` (n=3)
from real frames of ``ALE/<game>-v5`` (frameskip=1, no sticky actions) behind
gymnasium's ``AtariPreprocessing`` (noop_max=30, frame_skip=4, 84x84
grayscale) and ``FrameStackObservation(4)``, with random actions. A few
thousand real steps are recorded once (the stacks rebuilt from them are
checked against the wrapper's) and replayed cyclically by ``--actors``
interleaved actors; every lap of every actor stamps its number into the
first 4 pixels of each frame, so no frame is shared between laps and
deduplication saves only what it would on fresh data.

Both tables are filled to ``--size`` transitions, then ``--timed-inserts``
more are inserted and timed (the table's own time: making transitions is
not counted; the table is full, so they evict, and touch no fresh pages). Memory is what the table
holds (``info()["replay_bytes"]``: numpy ``nbytes`` of the columns and
frame pool, plus the hash index at 106 bytes per entry), with the growth of
the process's resident set (VmRSS) as a cross-check. The 1,000,000-
transition figure of the deduplicated layout is a real 1M table's allocated
bytes (allocation only touches the pages written) plus the hash index for
the entries per transition measured at ``--size``; the plain layout's is
its bytes per transition x 1M. Sampling is measured in interleaved rounds at
batch 32 and 256 (``distrl.bench.replay.measure``).

    python -m distrl.bench replay-atari [--size 100000] [--game Pong] [--env-steps 5000]
        [--actors 4] [--insert-batch 16] [--timed-inserts 20000] [--seconds 4] [--rounds 5]
        [--clock cpu|wall] [--no-plain]
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Callable, Iterator, NamedTuple, Sequence

import dm_env
import numpy as np

from distrl.adders import NStepTransitionAdder
from distrl.bench.replay import CLOCKS, measure
from distrl.replay import MinSize, Table, UniformSampler
from distrl.replay.client import ReplayClient
from distrl.types import Nest, SampleBatch

MILLION = 1_000_000
TARGET_BYTES = 7.5e9
"""The aim: a 1,000,000-transition deduplicated Atari table in at most 7.5 GB."""

STACK = 4
N_STEP = 3
SAMPLE_BATCHES = (32, 256)


class Episode(NamedTuple):
    """One recorded episode: frames [L + 1, 84, 84] uint8 (the reset frame first) and per step
    action int64 [L], reward float32 [L]; ``terminated`` False means truncated (or cut off)."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


def record_episodes(game: str = "Pong", steps: int = 5000, seed: int = 0) -> list[Episode]:
    """Plays ``steps`` random-action steps of the DQN Atari stack and keeps each new frame once.

    Raises:
      AssertionError: a stack rebuilt from the recorded frames differs from the wrapper's.
    """
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    env = gymnasium.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0)
    env = gymnasium.wrappers.AtariPreprocessing(
        env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True, terminal_on_life_loss=False)
    env = gymnasium.wrappers.FrameStackObservation(env, stack_size=STACK)
    env.action_space.seed(seed)
    episodes: list[Episode] = []
    observation, _ = env.reset(seed=seed)
    frames, actions, rewards = [observation[-1]], [], []
    for step in range(steps):
        action = env.action_space.sample()
        observation, reward, terminated, truncated, _ = env.step(action)
        frames.append(observation[-1])
        actions.append(action)
        rewards.append(reward)
        assert np.array_equal(stack_at(frames, len(frames) - 1), observation), "stack rebuilt differently"
        if terminated or truncated or step == steps - 1:
            episodes.append(Episode(np.stack(frames), np.asarray(actions, np.int64),
                                    np.asarray(rewards, np.float32), bool(terminated)))
            observation, _ = env.reset()
            frames, actions, rewards = [observation[-1]], [], []
    env.close()
    return episodes


def stack_at(frames: Sequence[np.ndarray], t: int) -> np.ndarray:
    """The observation at step t: frames t-3..t, the first frame repeating before the episode
    starts (``FrameStackObservation``'s "reset" padding)."""
    return np.stack([frames[max(0, i)] for i in range(t - STACK + 1, t + 1)])


class _Collect(ReplayClient):
    """Keeps the batches an adder inserts, for the generator to hand out."""

    def __init__(self) -> None:
        self.batches: collections.deque = collections.deque()

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        self.batches.append(items)

    def sample(self, batch_size: int) -> SampleBatch:
        raise NotImplementedError

    def can_sample(self, batch_size: int) -> bool:
        return False

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        raise NotImplementedError

    def info(self) -> dict:
        return {}


def _marked(frames: np.ndarray, lap: int) -> np.ndarray:
    """A copy of ``frames`` with ``lap`` (uint32) in the first 4 pixels of each frame."""
    frames = frames.copy()
    frames.reshape(len(frames), -1)[:, :4] = np.frombuffer(np.uint32(lap).tobytes(), np.uint8)
    return frames


def transition_batches(episodes: Sequence[Episode], size: int, actors: int = 4,
                       insert_batch: int = 16) -> Iterator[Nest]:
    """Batches of n-step ``Transition``s (at least ``size`` in all) from ``actors`` adders that
    play the recorded episodes cyclically, one env step each in turn."""
    client = _Collect()
    adders = [NStepTransitionAdder(client, N_STEP, 0.99, insert_batch) for _ in range(actors)]

    def steps(actor: int):
        for lap in range(actor, 1 << 31, actors):
            for e in range(len(episodes)):
                episode = episodes[(e + actor) % len(episodes)]
                frames = _marked(episode.frames, lap + 1)
                yield None, dm_env.restart(stack_at(frames, 0))
                for t in range(1, len(frames)):
                    reward, observation = float(episode.rewards[t - 1]), stack_at(frames, t)
                    if t < len(frames) - 1:
                        timestep = dm_env.transition(reward, observation)
                    elif episode.terminated:
                        timestep = dm_env.termination(reward, observation)
                    else:
                        timestep = dm_env.truncation(reward, observation)
                    yield episode.actions[t - 1], timestep

    streams = [steps(a) for a in range(actors)]
    made = 0
    while made < size:
        for actor, stream in enumerate(streams):
            action, timestep = next(stream)
            if action is None:
                adders[actor].add_first(timestep)
            else:
                adders[actor].add(action, timestep, extras={"policy_version": np.int64(actor)})
        while client.batches and made < size:
            batch = client.batches.popleft()
            made += len(batch.reward)
            yield batch


def resident_bytes() -> int | None:
    """The process's resident set size (VmRSS) in bytes; None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Layout(NamedTuple):
    """One table's figures: bytes (table, per transition, RSS growth, at 1M), rates per second."""

    name: str
    table_bytes: int
    bytes_per_transition: float
    rss_growth: int | None
    million_bytes: float
    insert_rate: float
    sample_rates: dict[int, float]
    pool_entries_per_transition: float | None
    pool_evictions: int


def fill(table: Table, batches: Iterator[Nest], size: int, clock: Callable[[], float]) -> float:
    """Inserts every batch, timing those after the first ``size`` transitions (a full table:
    inserts evict, as in a long run, and touch no new pages); returns their transitions per second."""
    spent, count, timed = 0.0, 0, 0
    for batch in batches:
        if count < size:
            table.insert(batch, block=False)
        else:
            start = clock()
            table.insert(batch, block=False)
            spent += clock() - start
            timed += len(batch.reward)
        count += len(batch.reward)
    return timed / spent


def million_dedup_bytes(entries_per_transition: float, batch: Nest) -> float:
    """Allocated bytes of a real 1M deduplicated table (one batch in), plus the hash index
    for ``entries_per_transition`` live entries per transition."""
    table = Table("atari-1m", MILLION, UniformSampler(seed=0), MinSize(1), deduplicate_frames=True)
    table.insert(batch, block=False)
    info = table.info()
    index = 106 * (entries_per_transition * MILLION - info["frame_pool_entries"])
    return info["replay_bytes"] + index


def run(episodes: Sequence[Episode], size: int, actors: int = 4, insert_batch: int = 16,
        seconds: float = 4.0, rounds: int = 5, clock: Callable[[], float] = time.thread_time,
        plain: bool = True, timed_inserts: int = 20_000) -> list[Layout]:
    """Fills a deduplicated (and a plain) table of ``size`` transitions, times ``timed_inserts``
    more inserted into the full table, and measures sampling from both."""
    tables: dict[str, Table] = {}
    figures: dict[str, dict] = {}
    for name, dedup in (("deduplicated", True), ("plain", False))[: 2 if plain else 1]:
        rss = resident_bytes()
        table = Table(name, size, UniformSampler(seed=0), MinSize(1), deduplicate_frames=dedup)
        batches = transition_batches(episodes, size + timed_inserts, actors, insert_batch)
        insert_rate = fill(table, batches, size, clock)
        after = resident_bytes()
        info = table.info()
        tables[name] = table
        figures[name] = {
            "table_bytes": info["replay_bytes"], "bytes_per_transition": info["replay_bytes"] / size,
            "rss_growth": None if rss is None or after is None else after - rss, "insert_rate": insert_rate,
            "pool_entries_per_transition": info["frame_pool_entries"] / info["size"] if dedup else None,
            "pool_evictions": info["frame_pool_evictions"],
        }
    first = next(transition_batches(episodes, insert_batch, actors, insert_batch))
    figures["deduplicated"]["million_bytes"] = million_dedup_bytes(
        figures["deduplicated"]["pool_entries_per_transition"], first)
    if plain:
        figures["plain"]["million_bytes"] = figures["plain"]["bytes_per_transition"] * MILLION
    rates: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        for batch_size in SAMPLE_BATCHES:
            for name, table in tables.items():
                step = _sample_step(table, batch_size)
                rates[name, batch_size].append(measure(step, batch_size, seconds / rounds / 4, clock))
    return [
        Layout(name, sample_rates={b: float(np.median(rates[name, b])) for b in SAMPLE_BATCHES}, **figures[name])
        for name in tables
    ]


def _sample_step(table: Table, batch_size: int) -> Callable[[int], object]:
    return lambda i: table.sample(batch_size)


def _gb(value: float | None) -> str:
    return "" if value is None else f"{value / 1e9:.2f} GB"


def format_report(layouts: Sequence[Layout], size: int, game: str, env_steps: int, actors: int,
                  insert_batch: int, rounds: int, clock: str) -> str:
    """The printed table, one line per layout, and whether the 1M deduplicated figure meets 7.5 GB."""
    time_kind = "thread CPU time" if clock == "cpu" else "wall-clock time"
    lines = [
        (f"Atari replay: ALE/{game}-v5, uint8 [4, 84, 84] stacks, n={N_STEP}, {actors} interleaved actors, "
         f"insert batches of {insert_batch}, {env_steps:,} real env steps reused with per-lap frame marks; "
         f"tables of {size:,} transitions; {time_kind}, sample rates are medians of {rounds} rounds"),
        (f"{'layout':<14}{'bytes/trans':>12}{'table':>11}{'RSS growth':>12}{'at 1M':>11}"
         f"{'insert/s':>10}{'sample/s b=32':>15}{'sample/s b=256':>16}{'frames/trans':>14}"),
    ]
    for layout in layouts:
        entries = layout.pool_entries_per_transition
        lines.append(
            f"{layout.name:<14}{layout.bytes_per_transition:>12,.0f}{_gb(layout.table_bytes):>11}"
            f"{_gb(layout.rss_growth):>12}{_gb(layout.million_bytes):>11}{layout.insert_rate:>10,.0f}"
            f"{layout.sample_rates[32]:>15,.0f}{layout.sample_rates[256]:>16,.0f}"
            f"{'' if entries is None else f'{entries:.4f}':>14}"
        )
    dedup = next(layout for layout in layouts if layout.name == "deduplicated")
    if dedup.pool_evictions:
        lines.append(f"note: {dedup.pool_evictions:,} items were evicted early for frame pool room")
    met = dedup.million_bytes <= TARGET_BYTES
    lines.append(
        f"deduplicated 1,000,000-transition table: {_gb(dedup.million_bytes)} "
        f"(aim <= {TARGET_BYTES / 1e9:.1f} GB): {'PASS' if met else 'ABOVE AIM'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, records the frames, runs the measurements and prints the table."""
    parser = argparse.ArgumentParser(
        prog="python -m distrl.bench replay-atari", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="table capacity in transitions")
    parser.add_argument("--game", default="Pong", help="ALE game, e.g. Pong, Breakout")
    parser.add_argument("--env-steps", type=int, default=5000, help="real env steps recorded and reused")
    parser.add_argument("--actors", type=int, default=4, help="interleaved actors (adders)")
    parser.add_argument("--insert-batch", type=int, default=16, help="transitions per insert call")
    parser.add_argument("--timed-inserts", type=int, default=20_000,
                        help="transitions inserted and timed after the table is full")
    parser.add_argument("--seconds", type=float, default=4.0, help="total time spent measuring samples")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of sample measurements")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="cpu: thread CPU time; wall")
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the plain table (it takes 56 KB per transition, 56 GB at 1M)")
    args = parser.parse_args(argv)
    for name in ("size", "env_steps", "actors", "insert_batch", "rounds", "timed_inserts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.insert_batch > args.size:
        parser.error(f"--insert-batch ({args.insert_batch}) must not exceed --size ({args.size})")
    start = time.perf_counter()
    episodes = record_episodes(args.game, args.env_steps)
    layouts = run(episodes, args.size, args.actors, args.insert_batch, args.seconds, args.rounds,
                  CLOCKS[args.clock], plain=not args.no_plain, timed_inserts=args.timed_inserts)
    print(format_report(layouts, args.size, args.game, args.env_steps, args.actors, args.insert_batch,
                        args.rounds, args.clock))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0
