"""Per-step measurement of an online run, aggregated into windows of global steps.

:class:`StepRecorder` receives every :class:`~driftrec.agents.online.StepRecord` (privileged:
the experiment, not the agent, reads the simulator's truth here) and every ``log_every`` global
steps emits one row of ``metrics.csv``. Column definitions (means over the user-steps of the
window unless said otherwise):

==========================  ====================================================================
``step``                    global step at the end of the window
``env_steps``               user-steps simulated so far
``reward``                  observed reward
``expected_reward``         expected reward of the shown action under the true model
``oracle_reward``           expected reward of the privileged one-step oracle's action
``normalized_reward``       the one-step oracle ratio ``expected_reward / oracle_reward``
                            (1 = as good as the myopic oracle; see below)
``regret``                  ``oracle_reward - expected_reward`` per user-step
``cum_regret``              running sum over global steps of the per-step mean regret
``click_rate``              share of user-steps with a click
``sessions``                sessions that ended in the window
``churn``                   share of those that ended because the user left (patience ran out)
``session_length``          mean length of those sessions (nan if none ended)
``diversity``               intra-list diversity at the window's end: mean over users of the
                            mean pairwise topic distance ``1 - cos(z_i, z_j)`` of the items in
                            the user's observed history
``coverage``                distinct items recommended in the window / items released
``cold_start_share``        share of recommended items released within the last
                            ``cold_start_window`` global steps
``oracle_cold_start_share`` the same for the oracle's actions
``tracking_error``          total-variation distance between the topic vector of what was
                            recommended and the user's preferred topic distribution
                            ``softmax(interest_weight * theta)``, averaged
``drift_event``             OR of the drift-event bits of the window
``personal_gain``           personalisation gain of the shown actions, per step: the mean over
                            users ``u`` of ``R(u, a_u)`` minus the mean over pairs ``u != v`` of
                            ``R(u, a_v)``, with ``R`` the true expected reward (before the step's
                            drift); 0 for a policy that ignores who the user is. Over the first
                            ``gain_users`` slots when ``B`` is larger. Averaged over the window
``distinct_items``          distinct items recommended per step (over all ``B`` users), averaged
``greedy_personal_gain``    the same gain for the agent's *greedy* choices on the window's last
                            observations (``BuiltAgent.greedy_actions``: exploration off, e.g.
                            LinUCB without its bonus, Thompson's posterior mean; computing them
                            draws from none of the run's random streams), evaluated in the state
                            the users are in then
``greedy_distinct_items``   distinct items among those greedy choices
``greedy_normalized_reward`` the one-step oracle ratio of those greedy choices: their expected
                            reward over the privileged oracle's, both in that state and over
                            the same ``gain_users`` slots. It separates what the policy has
                            learned from what its exploration costs (for a deterministic
                            policy it matches ``normalized_reward`` up to the state it is
                            measured in)
``user_return``             mean return (summed reward) of the users whose stay ended in the
                            window, over their whole stay, leaving included (nan if none ended)
``retention``               share of those stays that lasted to the session's time limit
                            (the user did not leave); ``1 - churn``
==========================  ====================================================================

**TensorBoard.** With ``tensorboard_dir`` (and the ``tensorboard`` package installed:
``pip install "driftrec[tensorboard]"``), every row is also written as TensorBoard scalars
``driftrec/<column>`` at ``global_step = step`` (empty values are left out; ``step`` and
``env_steps`` are the axis). The runner points it at the run directory, so ``tensorboard
--logdir runs`` shows every agent of every experiment, baselines included, under the same tags;
an SB3 agent's own scalars are beside them in ``<run>/sb3_log`` (indexed by SB3's
``num_timesteps``, which counts user-steps: global steps x users). The events are written
through ``torch.utils.tensorboard`` (no TensorFlow).

``normalized_reward`` is the *one-step oracle ratio*: it divides by the privileged one-step
oracle re-evaluated in whatever state the agent created, so it is at most about 1 and cannot
credit planning. ``user_return`` (and the return ratio the report computes against a
reference run on the same user streams) does. ``regret`` is the one-step regret per user-step
and ``cum_regret`` its sum over global steps: the cumulative one-step regret *per user slot*
(the same meaning as :attr:`driftrec.agents.base.EvalResult.regret`).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.online import StepRecord
from driftrec.envs.catalog import Catalog
from driftrec.envs.config import check_int
from driftrec.envs.drift import DriftEvent
from driftrec.envs.observation import ObservationLayout

__all__ = [
    "StepRecorder",
    "METRIC_COLUMNS",
    "TENSORBOARD_TAGS",
    "TensorBoardWriter",
    "tensorboard_available",
    "tensorboard_note",
]

METRIC_COLUMNS = (
    "step",
    "env_steps",
    "reward",
    "expected_reward",
    "oracle_reward",
    "normalized_reward",
    "regret",
    "cum_regret",
    "click_rate",
    "sessions",
    "churn",
    "session_length",
    "diversity",
    "coverage",
    "cold_start_share",
    "oracle_cold_start_share",
    "tracking_error",
    "drift_event",
    "personal_gain",
    "distinct_items",
    "greedy_personal_gain",
    "greedy_distinct_items",
    "greedy_normalized_reward",
    "user_return",
    "retention",
)

TENSORBOARD_TAGS = {
    column: f"driftrec/{column}" for column in METRIC_COLUMNS if column not in ("step", "env_steps")
}
"""``metrics.csv`` column -> TensorBoard tag (one layout for every agent)."""

TENSORBOARD_INSTALL_HINT = 'pip install "driftrec[tensorboard]"'


def tensorboard_available() -> bool:
    """True when the ``tensorboard`` package (which torch's ``SummaryWriter`` needs) is there."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_note() -> str | None:
    """The one-line note printed when TensorBoard logs are off (None when they are on)."""
    if tensorboard_available():
        return None
    return (
        "note: no TensorBoard logs (the tensorboard package is not installed); "
        f"for them: {TENSORBOARD_INSTALL_HINT}"
    )


class TensorBoardWriter:
    """Writes metric rows as TensorBoard scalars ``driftrec/<column>`` into ``log_dir``.

    Needs the ``tensorboard`` package (:func:`tensorboard_available`); the event file is
    ``log_dir/events.out.tfevents.*``, flushed every ``flush_secs`` and on :meth:`close`.
    """

    def __init__(self, log_dir: str | Path, flush_secs: int = 10) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir), flush_secs=flush_secs)

    def write(self, row: dict[str, float]) -> None:
        """Add one row's finite values at ``global_step = row["step"]``."""
        step = int(row["step"])
        for column, tag in TENSORBOARD_TAGS.items():
            value = row.get(column)
            if value is not None and math.isfinite(float(value)):
                self._writer.add_scalar(tag, float(value), global_step=step)

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


AttentionFn = Callable[[NDArray[np.float32]], NDArray[np.float64]]
GreedyFn = Callable[[NDArray[np.float32]], NDArray[np.int64]]


def personalization_gain(rewards: NDArray[np.float64]) -> float:
    """Gain of ``rewards[u, v] = R(u, a_v)``: mean of the diagonal minus mean off it.

    ``R(u, a_u)`` is what each user gets from its own recommendation, ``R(u, a_v)`` what it would
    get from another user's; a policy that gives everyone the same thing scores exactly 0.
    """
    u = rewards.shape[0]
    if u < 2:
        return float("nan")
    diag = float(np.trace(rewards))
    off = (float(rewards.sum()) - diag) / (u * (u - 1))
    return diag / u - off


def _softmax(x: NDArray[np.float64]) -> NDArray[np.float64]:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class StepRecorder:
    """Aggregates step records into metric rows, topic mixes and attention snapshots.

    Args:
        catalog: the env's catalog (topics, release steps).
        num_envs: user slots ``B``.
        layout: the observation layout.
        interest_weight: the choice model's interest weight (for preferred topic mixes).
        log_every: global steps per window.
        cold_start_window: how recent a release counts as cold start.
        track_users: how many user slots (0, 1, ...) to follow individually.
        attention_fn: maps one observation row ``(D,)`` to the recommender's attention over
            the history ``(H,)`` (attention agents only); its optional ``source`` attribute
            names what the weights are (saved with them, the figure's label).
        sim: the env's simulator (privileged), for the personalisation columns; without it they
            are nan.
        greedy_fn: the agent's greedy actions for a batch of observations ``(B, D)``, for the
            ``greedy_*`` columns (nan without it).
        gain_users: at most this many user slots (>= 2) enter the personalisation gain.
        tensorboard: a :class:`TensorBoardWriter` that gets every row as it is emitted
            (call :meth:`close` at the end of the run).
    """

    def __init__(
        self,
        catalog: Catalog,
        num_envs: int,
        layout: ObservationLayout,
        *,
        interest_weight: float,
        log_every: int,
        cold_start_window: int = 1000,
        track_users: int = 3,
        attention_fn: AttentionFn | None = None,
        sim: Any = None,
        greedy_fn: GreedyFn | None = None,
        gain_users: int = 64,
        tensorboard: TensorBoardWriter | None = None,
    ) -> None:
        check_int("gain_users", gain_users, 2)
        self.tensorboard = tensorboard
        self.catalog = catalog
        self.sim = sim
        self.greedy_fn = greedy_fn
        self._gain_users = np.arange(min(gain_users, num_envs))
        self.num_envs = num_envs
        self.layout = layout
        self.interest_weight = interest_weight
        self.log_every = log_every
        self.cold_start_window = cold_start_window
        self.track_users = min(track_users, num_envs)
        self.attention_fn = attention_fn
        self._topics = np.asarray(catalog.topics, dtype=np.float64)  # (N, K)
        norms = np.linalg.norm(self._topics, axis=1, keepdims=True)
        self._unit_topics = self._topics / np.maximum(norms, 1e-12)  # (N, K)
        self._release = np.asarray(catalog.release_step, dtype=np.int64)
        self._primary = np.argmax(self._topics, axis=1)
        self.rows: list[dict[str, float]] = []
        self.topic_rows: dict[str, list[NDArray[np.float64]]] = {
            "steps": [],
            "rec_mix": [],
            "interest_mix": [],
            "tracked_interest": [],
            "tracked_rec": [],
            "tracked_new_user": [],
        }
        self.attention_rows: dict[str, list[Any]] = {
            "steps": [],
            "weights": [],
            "item_topic": [],
            "feedback": [],
            "mask": [],
            "new_user": [],
        }
        self.events: list[dict[str, Any]] = []
        self.event_counts = {"interest_jump": 0, "new_items": 0}
        self._env_steps = 0
        self._cum_regret = 0.0
        self._session_len = np.zeros(num_envs, dtype=np.int64)
        self._session_return = np.zeros(num_envs)
        self._reset_window()

    def _reset_window(self) -> None:
        k = self._topics.shape[1]
        self._n = 0
        self._sums = dict.fromkeys(
            ("reward", "expected", "oracle", "click", "cold", "oracle_cold", "tracking"), 0.0
        )
        self._has_oracle = False
        self._sessions = 0
        self._left = 0
        self._lengths = 0
        self._returns = 0.0
        self._events = 0
        self._seen = np.zeros(len(self._release), dtype=bool)
        self._rec_mix = np.zeros(k)
        self._interest_mix = np.zeros(k)
        self._tracked_rec = np.zeros((self.track_users, k))
        self._tracked_new_user = np.zeros(max(self.track_users, 1), dtype=bool)
        self._steps_in_window = 0
        self._gain_sum = 0.0
        self._distinct_sum = 0.0

    def _gain_rewards(
        self, actions: NDArray[np.int64], before_last_step: bool
    ) -> NDArray[np.float64]:
        """``(U, U)`` ``R(u, a_v)`` of ``actions`` ``(B, k)`` over the ``gain_users`` slots."""
        users = self._gain_users
        cand = actions[users]  # (U, k): each user's own action is a candidate for every user
        return self.sim.slate_rewards(cand, users=users, before_last_step=before_last_step)

    def _gain(self, actions: NDArray[np.int64], before_last_step: bool) -> float:
        """Personalisation gain of ``actions`` ``(B, k)`` over the first ``gain_users`` slots."""
        return personalization_gain(self._gain_rewards(actions, before_last_step))

    # ------------------------------------------------------------------------------ per step
    def record(self, r: StepRecord) -> None:
        """Account for one vector step."""
        b = self.num_envs
        info = r.info
        actions = r.actions.reshape(b, -1)  # (B, k)
        items_topics = self._topics[actions].mean(axis=1)  # (B, K) topic mix shown to each user
        self._n += b
        self._steps_in_window += 1
        self._env_steps += b
        s = self._sums
        s["reward"] += float(r.reward.sum())
        s["click"] += float((info["clicked_item"] >= 0).sum())
        expected = np.asarray(info["expected_reward"], dtype=np.float64)
        s["expected"] += float(expected.sum())
        if "oracle_expected_reward" in info:
            self._has_oracle = True
            oracle = np.asarray(info["oracle_expected_reward"], dtype=np.float64)
            s["oracle"] += float(oracle.sum())
            self._cum_regret += float((oracle - expected).mean())
            oracle_items = np.asarray(info["oracle_action"]).reshape(b, -1)
            s["oracle_cold"] += float(self._recent(oracle_items, r.clock).mean(axis=1).sum())
        s["cold"] += float(self._recent(actions, r.clock).mean(axis=1).sum())
        preferred = _softmax(self.interest_weight * np.asarray(info["interests"]))  # (B, K)
        s["tracking"] += float(0.5 * np.abs(items_topics - preferred).sum(axis=1).sum())
        self._rec_mix += items_topics.sum(axis=0)
        self._interest_mix += preferred.sum(axis=0)
        self._tracked_rec += items_topics[: self.track_users]
        self._seen[actions.ravel()] = True
        self._distinct_sum += float(np.unique(actions).size)
        if self.sim is not None:
            self._gain_sum += self._gain(actions, before_last_step=True)
        events = np.bitwise_or.reduce(np.asarray(info["drift_events"], dtype=np.int64))
        self._events |= int(events)
        if events & DriftEvent.POPULATION_SHIFT:
            self.events.append({"step": int(r.clock), "kind": "population_shift"})
        if events & DriftEvent.NEW_ITEMS:
            self.event_counts["new_items"] += 1
        self.event_counts["interest_jump"] += int(
            (np.asarray(info["drift_events"]) & DriftEvent.INTEREST_JUMP).astype(bool).sum()
        )
        self._session_len += 1
        self._session_return += r.reward
        done = r.terminated | r.truncated
        self._tracked_new_user |= done[: self._tracked_new_user.size]
        if done.any():
            self._sessions += int(done.sum())
            self._left += int(r.terminated.sum())
            self._lengths += int(self._session_len[done].sum())
            self._returns += float(self._session_return[done].sum())
            self._session_len[done] = 0
            self._session_return[done] = 0.0
        if self._steps_in_window >= self.log_every:
            self._flush(r, preferred)

    def _recent(self, items: NDArray[np.int64], clock: int) -> NDArray[np.bool_]:
        rel = self._release[items]
        return (rel > 0) & (rel > clock - self.cold_start_window)

    def _diversity(self, obs: NDArray[np.float32]) -> float:
        lay = self.layout
        ids = obs[:, lay.item_ids].astype(np.int64)  # (B, H)
        mask = obs[:, lay.mask] > 0.5  # (B, H)
        vec = self._unit_topics[ids] * mask[..., None]  # (B, H, K)
        gram = np.einsum("bhk,bgk->bhg", vec, vec)  # (B, H, H) cosine similarities
        n = mask.sum(axis=1)  # (B,)
        pairs = n * (n - 1)
        off = gram.sum(axis=(1, 2)) - (vec * vec).sum(axis=(1, 2))  # sum over h != g
        ok = pairs > 0
        if not ok.any():
            return float("nan")
        return float((1.0 - off[ok] / pairs[ok]).mean())

    def _flush(self, r: StepRecord, preferred: NDArray[np.float64]) -> None:
        s, n = self._sums, max(self._n, 1)
        oracle = s["oracle"] / n if self._has_oracle else float("nan")
        expected = s["expected"] / n
        released = int((self._release <= r.clock).sum())
        row = {
            "step": int(r.clock),
            "env_steps": self._env_steps,
            "reward": s["reward"] / n,
            "expected_reward": expected,
            "oracle_reward": oracle,
            "normalized_reward": expected / oracle if self._has_oracle and oracle > 0 else np.nan,
            "regret": oracle - expected if self._has_oracle else float("nan"),
            "cum_regret": self._cum_regret if self._has_oracle else float("nan"),
            "click_rate": s["click"] / n,
            "sessions": self._sessions,
            "churn": self._left / self._sessions if self._sessions else float("nan"),
            "session_length": self._lengths / self._sessions if self._sessions else float("nan"),
            "diversity": self._diversity(r.next_observation),
            "coverage": float(self._seen.sum()) / max(released, 1),
            "cold_start_share": s["cold"] / n,
            "oracle_cold_start_share": s["oracle_cold"] / n if self._has_oracle else float("nan"),
            "tracking_error": s["tracking"] / n,
            "drift_event": self._events,
            "personal_gain": (
                self._gain_sum / max(self._steps_in_window, 1)
                if self.sim is not None
                else float("nan")
            ),
            "distinct_items": self._distinct_sum / max(self._steps_in_window, 1),
            **self._greedy_columns(r.next_observation),
            "user_return": self._returns / self._sessions if self._sessions else float("nan"),
            "retention": 1.0 - self._left / self._sessions if self._sessions else float("nan"),
        }
        self.rows.append(row)
        if self.tensorboard is not None:
            self.tensorboard.write(row)
        t = self.topic_rows
        t["steps"].append(np.asarray(r.clock))
        t["rec_mix"].append(self._rec_mix / n)
        t["interest_mix"].append(self._interest_mix / n)
        t["tracked_interest"].append(preferred[: self.track_users].copy())
        t["tracked_rec"].append(self._tracked_rec / max(self._steps_in_window, 1))
        t["tracked_new_user"].append(self._tracked_new_user[: self.track_users].copy())
        if self.attention_fn is not None:
            obs0 = np.asarray(r.next_observation[0], dtype=np.float32)
            lay = self.layout
            ids = obs0[lay.item_ids].astype(np.int64)
            mask = obs0[lay.mask] > 0.5
            a = self.attention_rows
            a["steps"].append(int(r.clock))
            a["weights"].append(np.asarray(self.attention_fn(obs0), dtype=np.float64))
            a["item_topic"].append(np.where(mask, self._primary[ids], -1))
            a["feedback"].append(obs0[lay.feedback].astype(np.float64))
            a["mask"].append(mask)
            a["new_user"].append(bool(self._tracked_new_user[0]))
        self._reset_window()

    def _greedy_columns(self, obs: NDArray[np.float32]) -> dict[str, float]:
        nan = float("nan")
        if self.greedy_fn is None:
            return {
                "greedy_personal_gain": nan,
                "greedy_distinct_items": nan,
                "greedy_normalized_reward": nan,
            }
        actions = np.asarray(self.greedy_fn(obs), dtype=np.int64).reshape(self.num_envs, -1)
        gain = ratio = nan
        if self.sim is not None:
            rewards = self._gain_rewards(actions, before_last_step=False)  # (U, U), now
            gain = personalization_gain(rewards)
            oracle = float(self.sim.oracle().expected_reward[self._gain_users].sum())
            ratio = float(np.trace(rewards)) / oracle if oracle > 0 else nan
        return {
            "greedy_personal_gain": float(gain),
            "greedy_distinct_items": float(np.unique(actions).size),
            "greedy_normalized_reward": float(ratio),
        }

    # ------------------------------------------------------------------------------ outputs
    def close(self) -> None:
        """Close the TensorBoard writer, if any (its events are then all on disk)."""
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def topics_arrays(self) -> dict[str, NDArray[Any]]:
        """Arrays for ``topics.npz``."""
        k = self._topics.shape[1]
        u = self.track_users
        t = self.topic_rows
        w = len(t["steps"])
        return {
            "steps": np.asarray(t["steps"], dtype=np.int64).reshape(w),
            "topic_names": np.asarray(self.catalog.topic_names, dtype=str),
            "rec_mix": np.asarray(t["rec_mix"]).reshape(w, k),
            "interest_mix": np.asarray(t["interest_mix"]).reshape(w, k),
            "tracked_interest": np.asarray(t["tracked_interest"]).reshape(w, u, k),
            "tracked_rec": np.asarray(t["tracked_rec"]).reshape(w, u, k),
            "tracked_new_user": np.asarray(t["tracked_new_user"], dtype=bool).reshape(w, u),
        }

    def attention_arrays(self) -> dict[str, NDArray[Any]] | None:
        """Arrays for ``attention.npz`` (None without an attention function)."""
        if self.attention_fn is None or not self.attention_rows["steps"]:
            return None
        a = self.attention_rows
        return {
            "steps": np.asarray(a["steps"], dtype=np.int64),
            "weights": np.stack(a["weights"]),
            "item_topic": np.stack(a["item_topic"]).astype(np.int64),
            "feedback": np.stack(a["feedback"]),
            "mask": np.stack(a["mask"]),
            "new_user": np.asarray(a["new_user"], dtype=bool),
            "topic_names": np.asarray(self.catalog.topic_names, dtype=str),
            "source": np.asarray(getattr(self.attention_fn, "source", "attention weight")),
        }
