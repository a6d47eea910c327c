"""The item catalog: ids, texts, topic mixtures, quality and release times.

A :class:`Catalog` is immutable and its arrays are read-only. Its texts,
``f"{title}. {description}"`` (see :meth:`Catalog.texts`), are what a language model encodes.
A catalog is either generated (:func:`generate_catalog`) or loaded from a file
(:func:`load_catalog`); :func:`build_catalog` picks one according to an
:class:`~driftrec.envs.config.EnvConfig`.

Generator
---------
:func:`generate_catalog` uses the first ``K = config.num_topics`` of the 24 named topics in
:data:`TOPIC_NAMES`. Each topic has its own vocabulary of nouns, adjectives and verbs. All
randomness comes from one ``np.random.default_rng(config.seed)``, so the same config always gives
the same catalog. For ``N`` items:

* **Main topic.** A random permutation of ``arange(N) % K``, so the topics are balanced and each
  one has items when ``N >= K``.
* **Topic mixture.** With purity ``p = config.topic_purity``, the main weight is
  ``w ~ Uniform[p - h, p + h]`` with ``h = min(p - 0.5, 1 - p)``. So ``E[w] = p`` and
  ``0.5 <= w <= 1``, and the main topic is the item's arg-max topic (ties only when ``p = 0.5``).
  The rest, ``1 - w``, goes to ONE secondary topic drawn uniformly from the other ``K - 1``; its
  weight is exactly 0 when ``p = 1``.
* **Text.** The title has 3 to 7 words and the description is one sentence. Both fill a few
  fixed templates with topic words. Each word slot independently takes its word from the
  secondary topic with probability ``1 - w``, and otherwise from the main topic. Within one item,
  the main-topic words of each kind are distinct.
* **Quality** ``~ Beta(config.quality_alpha, config.quality_beta)``.
* **Release step.** 0, except for ``round(config.new_item_fraction * N)`` items chosen at random,
  which get a release step drawn uniformly from ``{1, ..., config.release_horizon}``.
* **Jargon text style** (``text_style="jargon"``; the numbers above are unchanged). The title and
  the sentence are drawn as above but from a *decoy* topic, another topic than the item's main
  one (uniformly), so a general-purpose encoder reads them as that topic. The true topic is told
  only by a last phrase ("Filed under muvexquo and mugarka.") with
  :data:`JARGON_WORDS_PER_ITEM` distinct words of the topic's own :data:`JARGON_WORDS_PER_TOPIC`
  made-up words (three syllables from one shared pool, so topics share word pieces): every item
  of a topic draws from the same few words, so what is learned from clicks on some items
  carries over to the topic's new items. How badly the packaged MiniLM reads it is measured in
  BENCHMARKS.md (JargonNews).

Ids are ``"item-00000"``, ``"item-00001"``, ... (zero-padded to at least 5 digits).

File formats
------------
:func:`load_catalog` reads ``.csv`` files (header row, parsed with :mod:`csv`) and ``.jsonl`` files
(one JSON object per line; blank lines are skipped). The fields are:

================  ========  ================================  ================================
field             required  CSV cell                          JSONL value
================  ========  ================================  ================================
``id``            yes       non-empty text, unique            non-empty string (or integer)
``title``         yes       non-empty text                    non-empty string
``description``   yes       non-empty text                    non-empty string
``tags``          one of    ``news;jazz`` (equal weights)     ``["news", "jazz"]``
``topics``        the two   ``news:0.7;jazz:0.3``             ``{"news": 0.7, "jazz": 0.3}``
``quality``       no        number in [0, 1]; default 0.5     number in [0, 1] or null
``release_step``  no        integer >= 0                      integer >= 0 or null
================  ========  ================================  ================================

Empty cells, ``null`` and empty lists or objects count as absent. Each row gives exactly one of
``tags`` and ``topics``. Topic weights must be finite and > 0 and are normalised to sum 1. The
catalog's topic names are the sorted union of all names seen. There must be at least 2 of them and
at least 1 item. If ``new_item_fraction > 0``, a seeded random ``round(new_item_fraction * M)`` of
the ``M`` rows without a ``release_step`` get a release step drawn uniformly from
``{1, ..., release_horizon}``. The other rows get 0.

Unknown columns or keys are errors. Nothing is silently dropped. A problem in a row raises
:class:`CatalogError` with the message ``"{path}, line {lineno}, field '{field}': {expected} (got
{value!r})"``, where ``lineno`` is the 1-based physical line (the CSV header is line 1). Problems
that concern a whole line or file (invalid JSON, an empty file) leave out the ``field`` part.

:func:`save_catalog` writes the JSONL format atomically. A catalog saved and loaded back keeps its
ids, texts, quality and release steps exactly, and its topic weights to about 1e-16. The topic
columns come back in sorted-name order, and a topic that no item uses is not written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from driftrec.atomic import atomic_open
from driftrec.envs.config import check_float, check_int

if TYPE_CHECKING:
    from driftrec.envs.config import CatalogConfig, EnvConfig

__all__ = [
    "Catalog",
    "CatalogError",
    "TOPIC_NAMES",
    "generate_catalog",
    "load_catalog",
    "save_catalog",
    "build_catalog",
]


class CatalogError(ValueError):
    """A catalog file that cannot be read: bad format, missing or malformed fields."""


# --------------------------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------------------------
def _readonly(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


def _check_strings(name: str, values: Any, n: int | None, *, unique: bool) -> tuple[str, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"'{name}' must be a tuple of strings (got {type(values).__name__})")
    values = tuple(values)
    if n is not None and len(values) != n:
        raise ValueError(f"'{name}' must have length {n} like 'item_ids' (got {len(values)})")
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"'{name}' must hold non-empty strings (got {v!r} at index {i})")
    if unique and len(set(values)) != len(values):
        seen: set[str] = set()
        dup = next(v for v in values if v in seen or seen.add(v))  # type: ignore[func-returns-value]
        raise ValueError(f"'{name}' must be unique (got {dup!r} twice)")
    return values


def _check_array(name: str, value: Any, shape: tuple[int, ...], kinds: str) -> NDArray[Any]:
    array = np.asarray(value)
    if array.dtype.kind not in kinds:
        what = "an integer" if kinds == "iu" else "a real-valued"
        raise ValueError(f"'{name}' must be {what} array (got dtype {array.dtype})")
    if array.shape != shape:
        raise ValueError(f"'{name}' must have shape {shape} (got {array.shape})")
    return array


@dataclass(frozen=True, eq=False)
class Catalog:
    """An immutable item catalog with ``N`` items over ``K`` topics.

    The arrays are copied, converted to their dtypes and made read-only when the catalog is
    built. ``__post_init__`` raises ``ValueError`` (or ``TypeError`` for a non-sequence) naming
    the field and what was expected.

    Attributes:
        item_ids: ``(N,)`` unique, non-empty string ids.
        titles: ``(N,)`` non-empty titles.
        descriptions: ``(N,)`` non-empty one-sentence descriptions.
        topic_names: ``(K,)`` unique topic names, ``K >= 2``.
        topics: ``(N, K)`` float64 topic mixtures: entries ``>= 0``, rows sum to 1 (within 1e-6).
        quality: ``(N,)`` float64 quality in ``[0, 1]``.
        release_step: ``(N,)`` int64 global step ``>= 0`` from which the item can be recommended.
    """

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    descriptions: tuple[str, ...]
    topic_names: tuple[str, ...]
    topics: NDArray[np.float64]
    quality: NDArray[np.float64]
    release_step: NDArray[np.int64]

    def __post_init__(self) -> None:
        ids = _check_strings("item_ids", self.item_ids, None, unique=True)
        n = len(ids)
        if n < 1:
            raise ValueError("'item_ids' must hold at least 1 item (got 0)")
        titles = _check_strings("titles", self.titles, n, unique=False)
        descriptions = _check_strings("descriptions", self.descriptions, n, unique=False)
        names = _check_strings("topic_names", self.topic_names, None, unique=True)
        k = len(names)
        if k < 2:
            raise ValueError(f"'topic_names' must hold at least 2 topics (got {k})")

        topics = _check_array("topics", self.topics, (n, k), "fiu").astype(np.float64)
        if not np.isfinite(topics).all() or (topics < 0).any():
            i, j = np.argwhere(~(np.isfinite(topics) & (topics >= 0)))[0]
            raise ValueError(
                f"'topics' must be finite and >= 0 (got {float(topics[i, j])!r} at [{i}, {j}])"
            )
        sums = topics.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if bad.size:
            raise ValueError(
                f"'topics' rows must sum to 1 (got {float(sums[bad[0]])!r} in row {bad[0]})"
            )

        quality = _check_array("quality", self.quality, (n,), "fiu").astype(np.float64)
        bad = np.flatnonzero(~(np.isfinite(quality) & (quality >= 0) & (quality <= 1)))
        if bad.size:
            raise ValueError(
                f"'quality' must be finite numbers in [0, 1] (got {float(quality[bad[0]])!r} "
                f"at index {bad[0]})"
            )

        release = _check_array("release_step", self.release_step, (n,), "iu")
        bad = np.flatnonzero(release < 0)
        if bad.size:
            raise ValueError(
                f"'release_step' must be integers >= 0 (got {int(release[bad[0]])!r} "
                f"at index {bad[0]})"
            )
        if release.dtype.kind == "u" and release.size and release.max() > np.iinfo(np.int64).max:
            raise ValueError(f"'release_step' must fit in int64 (got {int(release.max())!r})")

        set_ = object.__setattr__
        set_(self, "item_ids", ids)
        set_(self, "titles", titles)
        set_(self, "descriptions", descriptions)
        set_(self, "topic_names", names)
        set_(self, "topics", _readonly(topics))  # astype copied already
        set_(self, "quality", _readonly(quality))
        set_(self, "release_step", _readonly(release.astype(np.int64)))  # copies

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled or deep-copied catalog, keeping its arrays read-only."""
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (
            f"Catalog(num_items={self.num_items}, num_topics={self.num_topics}, "
            f"fingerprint={self.fingerprint()[:12]!r})"
        )

    @property
    def num_items(self) -> int:
        """The number of items ``N``."""
        return len(self.item_ids)

    @property
    def num_topics(self) -> int:
        """The number of topics ``K``."""
        return len(self.topic_names)

    def texts(self) -> list[str]:
        """Return ``f"{title}. {description}"`` for each item (what the language model encodes)."""
        return [f"{t}. {d}" for t, d in zip(self.titles, self.descriptions, strict=True)]

    def released(self, clock: int) -> NDArray[np.bool_]:
        """Return the ``(N,)`` mask of items that can be recommended at global step ``clock``."""
        return self.release_step <= clock

    def fingerprint(self) -> str:
        """Return a SHA-256 hex digest over the ids and texts, stable across runs and platforms.

        It is a cache key for text embeddings. It depends only on the ids and texts, so topics,
        quality and release steps do not change it.
        """
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            h = hashlib.sha256(b"driftrec-catalog-v1\x00")
            for item_id, text in zip(self.item_ids, self.texts(), strict=True):
                h.update(item_id.encode("utf-8"))
                h.update(b"\x1f")
                h.update(text.encode("utf-8"))
                h.update(b"\x1e")
            cached = h.hexdigest()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def content_fingerprint(self) -> str:
        """Return a SHA-256 hex digest over everything in the catalog, in item order.

        Unlike :meth:`fingerprint` (ids and texts, the embedding-cache key) it also covers the
        topic names, topic mixtures, quality and release steps, so reordered or rewritten rows
        change it. Runs and checkpoints record it to detect a changed catalog.
        """
        cached = self.__dict__.get("_content_fingerprint")
        if cached is None:
            h = hashlib.sha256(b"driftrec-catalog-content-v1\x00")
            h.update(self.fingerprint().encode())
            h.update("\x1f".join(self.topic_names).encode("utf-8"))
            for array, dtype in (
                (self.topics, "<f8"),
                (self.quality, "<f8"),
                (self.release_step, "<i8"),
            ):
                h.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
            cached = h.hexdigest()
            object.__setattr__(self, "_content_fingerprint", cached)
        return cached

    def primary_topic(self) -> NDArray[np.int64]:
        """Return the ``(N,)`` arg-max topic of each item (the lowest index on ties)."""
        return np.argmax(self.topics, axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# vocabularies of the generator: (topic name, nouns, adjectives, verbs)
# Nouns have at most 2 words, adjectives 1 word and verbs at most 2 words, so every title has
# 3 to 7 words.
# --------------------------------------------------------------------------------------------
_VOCABULARY: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "space exploration",
        ("rocket", "astronaut", "orbit", "spacecraft", "moon landing", "mars rover",
         "space station", "launch pad", "telescope", "galaxy", "nebula", "satellite", "asteroid",
         "lunar module", "mission control", "booster", "comet", "exoplanet", "spacewalk",
         "solar system"),
        ("orbital", "interstellar", "lunar", "martian", "cosmic", "zero-gravity", "celestial",
         "interplanetary"),
        ("launch", "orbit", "dock", "land", "explore"),
    ),
    (
        "cooking",
        ("recipe", "skillet", "sourdough", "risotto", "spice rack", "cast iron", "dumplings",
         "broth", "pastry", "chef's knife", "roux", "marinade", "casserole", "stir-fry", "oven",
         "kitchen", "saucepan", "herbs", "dough", "pasta sauce"),
        ("savory", "crispy", "homemade", "tender", "garlicky", "slow-cooked", "caramelized",
         "golden"),
        ("simmer", "bake", "sear", "knead", "season"),
    ),
    (
        "football",
        ("striker", "goalkeeper", "penalty kick", "midfield", "offside rule", "free kick",
         "hat-trick", "stadium", "world cup", "referee", "league table", "corner kick",
         "dribbling", "transfer window", "derby", "header", "tackle", "touchline", "clean sheet",
         "playmaker"),
        ("attacking", "defensive", "tactical", "top-flight", "relegated", "unbeaten",
         "league-winning", "counter-pressing"),
        ("score", "dribble", "defend", "tackle", "shoot"),
    ),
    (
        "jazz",
        ("saxophone", "trumpet solo", "bebop", "swing band", "improvisation", "double bass",
         "big band", "blue note", "chord changes", "trio", "jazz standards", "scat singing",
         "jam session", "bandleader", "piano riff", "syncopation", "vinyl record", "nightclub",
         "brass section", "quartet"),
        ("bluesy", "smoky", "improvised", "syncopated", "swinging", "mellow", "soulful", "cool"),
        ("improvise", "swing", "riff", "comp", "jam"),
    ),
    (
        "gardening",
        ("compost", "seedlings", "raised bed", "perennials", "pruning shears", "tomato plants",
         "mulch", "greenhouse", "flower border", "potting soil", "watering can", "bulbs",
         "hedges", "vegetable patch", "trellis", "roses", "weeds", "allotment", "herb garden",
         "fertilizer"),
        ("blooming", "organic", "leafy", "hardy", "shady", "drought-tolerant", "flowering",
         "green-fingered"),
        ("prune", "plant", "sow", "weed", "repot"),
    ),
    (
        "personal finance",
        ("budget", "savings account", "mortgage", "credit score", "index fund",
         "retirement plan", "tax return", "emergency fund", "compound interest", "pension",
         "student loan", "credit card", "stock portfolio", "paycheck", "mutual fund",
         "inflation", "dividend", "household budget", "interest rate", "frugality"),
        ("frugal", "tax-free", "debt-free", "high-yield", "financial", "low-cost", "long-term",
         "diversified"),
        ("budget", "save", "invest", "refinance", "pay off"),
    ),
    (
        "ancient history",
        ("pharaoh", "roman empire", "pyramids", "gladiator", "legion", "city-state",
         "hieroglyphs", "senate", "emperor", "bronze age", "temple ruins", "papyrus", "chariot",
         "acropolis", "spartans", "mesopotamia", "archaeology", "amphitheater", "dynasty",
         "sphinx"),
        ("ancient", "roman", "imperial", "classical", "egyptian", "bronze-age", "archaeological",
         "hellenistic"),
        ("conquer", "excavate", "rule", "besiege", "decipher"),
    ),
    (
        "machine learning",
        ("neural network", "gradient descent", "training data", "transformer", "loss function",
         "dataset", "overfitting", "embeddings", "backpropagation", "classifier",
         "hyperparameters", "reinforcement learning", "attention layer", "benchmark",
         "gpu cluster", "decision tree", "regression model", "feature engineering",
         "fine-tuning", "inference"),
        ("supervised", "deep", "probabilistic", "generative", "convolutional", "unsupervised",
         "data-driven", "predictive"),
        ("train", "fine-tune", "optimize", "regularize", "classify"),
    ),
    (
        "horror",
        ("haunted house", "ghost", "vampire", "zombie", "poltergeist", "graveyard", "slasher",
         "possession", "exorcism", "werewolf", "cursed doll", "nightmare", "crypt", "demon",
         "seance", "asylum", "blood moon", "witch", "monster", "scream"),
        ("terrifying", "haunted", "eerie", "bloodcurdling", "creepy", "sinister", "undead",
         "gruesome"),
        ("haunt", "scare", "possess", "stalk", "curse"),
    ),
    (
        "travel",
        ("passport", "backpacking", "itinerary", "hostel", "road trip", "airport lounge",
         "boarding pass", "beach resort", "guidebook", "suitcase", "jet lag", "travel visa",
         "cruise", "layover", "tourist", "souvenir", "sightseeing", "hotel", "city break",
         "border crossing"),
        ("scenic", "exotic", "adventurous", "touristy", "remote", "backpacker-friendly",
         "far-flung", "all-inclusive"),
        ("travel", "pack", "book", "backpack", "visit"),
    ),
    (
        "fitness",
        ("workout", "treadmill", "squats", "dumbbells", "push-ups", "cardio", "personal trainer",
         "gym", "protein shake", "kettlebell", "deadlift", "marathon training", "yoga mat",
         "interval training", "six-pack", "sit-ups", "warm-up", "resistance band",
         "bench press", "muscle gain"),
        ("sweaty", "muscular", "high-intensity", "athletic", "toned", "aerobic", "strenuous",
         "full-body"),
        ("lift", "stretch", "sprint", "tone", "bulk up"),
    ),
    (
        "fashion",
        ("runway", "designer", "haute couture", "wardrobe", "handbag", "denim", "catwalk",
         "sneakers", "fashion week", "tailoring", "dress", "silk scarf", "streetwear",
         "vintage clothing", "accessories", "stylist", "boutique", "leather jacket",
         "collection", "trend"),
        ("stylish", "chic", "elegant", "tailored", "trendy", "glamorous", "fashionable",
         "bespoke"),
        ("style", "wear", "tailor", "accessorize", "dress"),
    ),
    (
        "photography",
        ("camera", "lens", "aperture", "shutter speed", "tripod", "exposure", "portrait",
         "darkroom", "film roll", "viewfinder", "bokeh", "flash", "landscape shot", "zoom lens",
         "focal length", "histogram", "light meter", "photo editing", "negative", "snapshot"),
        ("photographic", "long-exposure", "wide-angle", "black-and-white", "sharp", "blurry",
         "candid", "overexposed"),
        ("shoot", "focus", "expose", "frame", "develop"),
    ),
    (
        "chess",
        ("checkmate", "opening", "grandmaster", "endgame", "pawn", "bishop", "rook",
         "queen sacrifice", "knight", "chessboard", "gambit", "castling", "stalemate",
         "tournament", "chess clock", "blunder", "sicilian defense", "en passant",
         "pawn structure", "zugzwang"),
        ("positional", "blitz", "rated", "theoretical", "drawish", "combinational", "rapid",
         "strategic"),
        ("checkmate", "castle", "sacrifice", "promote", "resign"),
    ),
    (
        "wildlife",
        ("elephant", "savanna", "predator", "migration", "lion pride", "wolf pack", "rainforest",
         "coral reef", "safari", "bird watching", "endangered species", "habitat", "whale",
         "gorilla", "cheetah", "nature reserve", "poaching", "herd", "den", "owl"),
        ("wild", "endangered", "nocturnal", "migratory", "predatory", "untamed", "feathered",
         "furry"),
        ("hunt", "roam", "migrate", "nest", "forage"),
    ),
    (
        "architecture",
        ("skyscraper", "facade", "cathedral", "blueprint", "floor plan", "concrete", "brutalism",
         "arches", "columns", "urban design", "courtyard", "staircase", "steel frame", "atrium",
         "gothic spire", "modernism", "dome", "townhouse", "glass tower", "architect"),
        ("brutalist", "modernist", "gothic", "minimalist", "structural", "neoclassical",
         "art-deco", "vaulted"),
        ("design", "build", "restore", "renovate", "draft"),
    ),
    (
        "poetry",
        ("sonnet", "stanza", "verse", "haiku", "rhyme", "meter", "poet", "metaphor", "ode",
         "free verse", "couplet", "elegy", "limerick", "anthology", "spoken word", "imagery",
         "iambic pentameter", "lyric", "chapbook", "refrain"),
        ("lyrical", "rhyming", "poetic", "melancholic", "romantic", "elegiac", "metrical",
         "wistful"),
        ("recite", "compose", "rhyme", "versify", "memorize"),
    ),
    (
        "cars",
        ("engine", "sports car", "horsepower", "gearbox", "convertible", "turbocharger", "sedan",
         "pickup truck", "dashboard", "exhaust", "electric vehicle", "test drive", "tires",
         "muscle car", "garage", "clutch", "v8 engine", "roadster", "fuel economy",
         "suspension"),
        ("turbocharged", "automotive", "off-road", "fuel-efficient", "rear-wheel-drive",
         "souped-up", "supercharged", "road-legal"),
        ("drive", "race", "tune", "overtake", "rev"),
    ),
    (
        "medicine",
        ("diagnosis", "surgeon", "vaccine", "antibiotics", "hospital ward", "blood pressure",
         "clinical trial", "prescription", "symptoms", "immune system", "nurse", "stethoscope",
         "chemotherapy", "emergency room", "heart surgery", "infection", "painkillers",
         "physician", "x-ray", "patient"),
        ("clinical", "medical", "surgical", "chronic", "diagnostic", "pharmaceutical",
         "infectious", "therapeutic"),
        ("diagnose", "treat", "prescribe", "vaccinate", "operate"),
    ),
    (
        "video games",
        ("console", "boss fight", "controller", "multiplayer", "speedrun", "level design",
         "esports", "open world", "save file", "pixel art", "respawn", "loot box", "game engine",
         "joystick", "quest", "arcade", "indie game", "patch notes", "leaderboard",
         "achievements"),
        ("pixelated", "multiplayer", "retro", "cooperative", "open-world", "competitive",
         "addictive", "8-bit"),
        ("level up", "respawn", "grind", "speedrun", "unlock"),
    ),
    (
        "climate",
        ("carbon emissions", "global warming", "sea level", "heatwave", "drought", "glacier",
         "polar ice", "renewable energy", "carbon tax", "wildfire", "hurricane", "solar panels",
         "fossil fuels", "climate model", "permafrost", "deforestation", "carbon footprint",
         "wind turbines", "net zero", "ocean acidification"),
        ("warming", "sustainable", "low-carbon", "renewable", "extreme", "melting",
         "carbon-neutral", "arid"),
        ("decarbonize", "mitigate", "adapt", "emit", "offset"),
    ),
    (
        "true crime",
        ("detective", "murder case", "suspect", "cold case", "forensics", "crime scene", "alibi",
         "interrogation", "serial killer", "courtroom", "jury", "verdict", "fingerprints",
         "autopsy", "homicide", "witness", "kidnapping", "prosecutor", "confession",
         "evidence"),
        ("unsolved", "forensic", "criminal", "notorious", "wrongful", "investigative", "grisly",
         "missing"),
        ("investigate", "convict", "confess", "interrogate", "testify"),
    ),
    (
        "parenting",
        ("toddler", "newborn", "bedtime routine", "diapers", "tantrums", "playground",
         "school run", "baby sling", "teething", "homework", "siblings", "daycare",
         "breastfeeding", "nursery", "pacifier", "screen time", "potty training", "teenagers",
         "family dinner", "stroller"),
        ("sleepless", "toddler-proof", "kid-friendly", "patient", "gentle", "nurturing",
         "family-friendly", "age-appropriate"),
        ("soothe", "babysit", "swaddle", "breastfeed", "discipline"),
    ),
    (
        "comedy",
        ("stand-up", "punchline", "sitcom", "sketch show", "comedian", "improv", "one-liner",
         "satire", "parody", "open mic", "laugh track", "heckler", "roast", "slapstick",
         "comedy club", "prank", "pun", "blooper", "clown", "deadpan"),
        ("hilarious", "witty", "absurd", "sarcastic", "deadpan", "goofy", "slapstick",
         "laugh-out-loud"),
        ("joke", "heckle", "roast", "prank", "parody"),
    ),
)  # fmt: skip

TOPIC_NAMES: tuple[str, ...] = tuple(entry[0] for entry in _VOCABULARY)
"""The 24 named topics of the generator, in order; ``num_topics = K`` uses the first K."""

# Templates. Slots: {a} adjective; {v} verb; {n0} {n1} {n2} nouns. A title uses slot set 0, a
# description slot set 1 (different words). Titles have 3 to 7 words.
_TITLE_TEMPLATES: tuple[str, ...] = (
    "the {a} {n0}",
    "{a} {n0} and {n1}",
    "a guide to {a} {n0}",
    "{n0}: the {a} {n1}",
    "how to {v} {n0}",
    "{n0}, {n1} and {n2}",
    "notes on {a} {n0}",
    "the case for {n0}",
)
_DESCRIPTION_TEMPLATES: tuple[str, ...] = (
    "A close look at {a} {n0} and {n1}, with a detour into {n2}.",
    "Learn how to {v} {n0} while keeping {n1} and {n2} in mind.",
    "From {n0} to {n1}, this {a} piece covers everything about {n2}.",
    "An introduction to {n0} for anyone curious about {a} {n1} and {n2}.",
    "Everything you need to know to {v} {n0}, plus tips on {n1} and {n2}.",
    "The {a} story of {n0}, {n1} and the people who {v} {n2}.",
    "Experts discuss {a} {n0}, {n1} and what comes next for {n2}.",
    "Why {n0} and {n1} matter more than ever in the {a} world of {n2}.",
)
_SLOTS = {"noun": 6, "adj": 2, "verb": 2}  # per item: title uses the first half, description rest


def _word_table(kind: int, num_topics: int) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Flat word array of one kind (1 nouns, 2 adjectives, 3 verbs) and per-topic offsets."""
    lists = [_VOCABULARY[k][kind] for k in range(num_topics)]
    lengths = np.array([len(words) for words in lists], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.empty(int(lengths.sum()), dtype=object)
    flat[:] = [w for words in lists for w in words]
    return flat, np.stack([offsets, lengths])


def _draw_words(
    rng: np.random.Generator,
    kind: int,
    num_slots: int,
    num_topics: int,
    main: NDArray[np.int64],
    secondary: NDArray[np.int64],
    secondary_weight: NDArray[np.float64],
) -> list[list[str]]:
    """Draw ``num_slots`` words of one kind per item; main-topic words are distinct per item."""
    n = main.shape[0]
    flat, (offsets, lengths) = _word_table(kind, num_topics)
    # distinct main-topic words: the num_slots smallest of random keys over the topic's list
    width = int(lengths.max())
    keys = rng.random((n, width))
    keys[np.arange(width)[None, :] >= lengths[main][:, None]] = 2.0
    main_idx = np.argsort(keys, axis=1, kind="stable")[:, :num_slots]
    # each slot comes from the secondary topic with probability 1 - w
    use_secondary = rng.random((n, num_slots)) < secondary_weight[:, None]
    sec_idx = (rng.random((n, num_slots)) * lengths[secondary][:, None]).astype(np.int64)
    topic = np.where(use_secondary, secondary[:, None], main[:, None])
    index = np.where(use_secondary, sec_idx, main_idx)
    return flat[offsets[topic] + index].tolist()


def generate_catalog(config: CatalogConfig) -> Catalog:
    """Generate a synthetic catalog with topic-specific texts (see the module docstring).

    Args:
        config: the catalog configuration; ``config.num_topics`` selects the first K topics of
            :data:`TOPIC_NAMES`.

    Returns:
        The catalog; the same ``config`` always gives the same catalog.

    Raises:
        ValueError: if ``config.num_topics`` is larger than the number of named topics.
    """
    n, k = config.num_items, config.num_topics
    if not 2 <= k <= len(TOPIC_NAMES):
        raise ValueError(f"'num_topics' must be an integer in [2, {len(TOPIC_NAMES)}] (got {k!r})")
    rng = np.random.default_rng(config.seed)

    # numeric part
    main = rng.permutation(np.arange(n, dtype=np.int64) % k)
    p = float(config.topic_purity)
    half = min(p - 0.5, 1.0 - p)
    weight = rng.uniform(p - half, p + half, size=n) if half > 0 else np.full(n, p)
    secondary = (main + rng.integers(1, k, size=n)) % k
    secondary_weight = 1.0 - weight
    topics = np.zeros((n, k), dtype=np.float64)
    rows = np.arange(n)
    topics[rows, main] = weight
    topics[rows, secondary] += secondary_weight
    quality = rng.beta(config.quality_alpha, config.quality_beta, size=n)
    release = np.zeros(n, dtype=np.int64)
    num_new = int(round(config.new_item_fraction * n))
    if num_new:
        new = rng.choice(n, size=num_new, replace=False)
        release[new] = rng.integers(1, config.release_horizon + 1, size=num_new)

    if config.text_style == "jargon":
        titles, descriptions = _jargon_texts(rng, main, k)
        return _generated(n, titles, descriptions, k, topics, quality, release)

    # text part
    title_t = rng.integers(0, len(_TITLE_TEMPLATES), size=n).tolist()
    desc_t = rng.integers(0, len(_DESCRIPTION_TEMPLATES), size=n).tolist()
    args = (main, secondary, secondary_weight)
    nouns = _draw_words(rng, 1, _SLOTS["noun"], k, *args)
    adjs = _draw_words(rng, 2, _SLOTS["adj"], k, *args)
    verbs = _draw_words(rng, 3, _SLOTS["verb"], k, *args)
    title_fmt = [t.format for t in _TITLE_TEMPLATES]
    desc_fmt = [t.format for t in _DESCRIPTION_TEMPLATES]
    titles: list[str] = []
    descriptions: list[str] = []
    for i in range(n):
        nn, aa, vv = nouns[i], adjs[i], verbs[i]
        title = title_fmt[title_t[i]](a=aa[0], v=vv[0], n0=nn[0], n1=nn[1], n2=nn[2])
        titles.append(title[0].upper() + title[1:])
        descriptions.append(desc_fmt[desc_t[i]](a=aa[1], v=vv[1], n0=nn[3], n1=nn[4], n2=nn[5]))

    return _generated(n, titles, descriptions, k, topics, quality, release)


def _generated(
    n: int,
    titles: Sequence[str],
    descriptions: Sequence[str],
    k: int,
    topics: NDArray[np.float64],
    quality: NDArray[np.float64],
    release: NDArray[np.int64],
) -> Catalog:
    width = max(5, len(str(n - 1)))
    return Catalog(
        item_ids=tuple(f"item-{i:0{width}d}" for i in range(n)),
        titles=tuple(titles),
        descriptions=tuple(descriptions),
        topic_names=TOPIC_NAMES[:k],
        topics=topics,
        quality=quality,
        release_step=release,
    )


# The "jargon" text style: what a frozen general-purpose encoder reads badly.
_JARGON_SYLLABLES = (
    "ka", "zo", "vex", "tri", "mu", "quo", "ran", "fel", "dor", "xi", "pla", "sug", "bri",
    "nol", "te", "gar",
)  # fmt: skip
JARGON_WORDS_PER_TOPIC = 4
"""Made-up jargon words per topic in the ``"jargon"`` text style."""
JARGON_WORDS_PER_ITEM = 2
"""Distinct jargon words of its topic in each item's text."""
_JARGON_TEMPLATES = (
    "Filed under {j0} and {j1}.",
    "Insiders call it {j0}, even {j1}.",
    "Tags: {j0}, {j1}.",
    "Catalogued as {j0} ({j1}).",
)


def jargon_lexicon(rng: np.random.Generator, num_topics: int) -> list[list[str]]:
    """``num_topics`` lists of :data:`JARGON_WORDS_PER_TOPIC` distinct made-up words (three
    syllables from one shared pool, so the words of different topics share word pieces)."""
    seen: set[str] = set()
    lexicon: list[list[str]] = []
    for _ in range(num_topics):
        words: list[str] = []
        while len(words) < JARGON_WORDS_PER_TOPIC:
            word = "".join(rng.choice(_JARGON_SYLLABLES, size=3))
            if word not in seen:
                seen.add(word)
                words.append(word)
        lexicon.append(words)
    return lexicon


def _jargon_texts(
    rng: np.random.Generator, main: NDArray[np.int64], k: int
) -> tuple[list[str], list[str]]:
    """Titles and descriptions in the ``"jargon"`` style (see :func:`generate_catalog`)."""
    n = main.shape[0]
    decoy = (main + rng.integers(1, k, size=n)) % k  # another topic, uniformly
    none = np.zeros(n)
    nouns = _draw_words(rng, 1, _SLOTS["noun"], k, decoy, decoy, none)
    adjs = _draw_words(rng, 2, _SLOTS["adj"], k, decoy, decoy, none)
    verbs = _draw_words(rng, 3, _SLOTS["verb"], k, decoy, decoy, none)
    title_t = rng.integers(0, len(_TITLE_TEMPLATES), size=n).tolist()
    desc_t = rng.integers(0, len(_DESCRIPTION_TEMPLATES), size=n).tolist()
    lexicon = jargon_lexicon(rng, k)
    keys = rng.random((n, JARGON_WORDS_PER_TOPIC))
    picks = np.argsort(keys, axis=1)[:, :JARGON_WORDS_PER_ITEM]  # distinct words per item
    tell_t = rng.integers(0, len(_JARGON_TEMPLATES), size=n).tolist()
    titles: list[str] = []
    descriptions: list[str] = []
    for i in range(n):
        nn, aa, vv = nouns[i], adjs[i], verbs[i]
        title = _TITLE_TEMPLATES[title_t[i]].format(a=aa[0], v=vv[0], n0=nn[0], n1=nn[1], n2=nn[2])
        titles.append(title[0].upper() + title[1:])
        words = [lexicon[int(main[i])][int(j)] for j in picks[i]]
        tell = _JARGON_TEMPLATES[tell_t[i]].format(j0=words[0], j1=words[1])
        desc = _DESCRIPTION_TEMPLATES[desc_t[i]].format(
            a=aa[1], v=vv[1], n0=nn[3], n1=nn[4], n2=nn[5]
        )
        descriptions.append(f"{desc} {tell}")
    return titles, descriptions


# --------------------------------------------------------------------------------------------
# loading and saving
# --------------------------------------------------------------------------------------------
_FIELDS = ("id", "title", "description", "tags", "topics", "quality", "release_step")
_REQUIRED = ("id", "title", "description")
_EXTENSIONS = (".csv", ".jsonl")
_DEFAULT_QUALITY = 0.5


@dataclass(slots=True)
class _Row:
    lineno: int
    item_id: str
    title: str
    description: str
    topics: dict[str, float]
    quality: float
    release_step: int | None


class _RowParser:
    """Checks and converts the fields of one row; every error names path, line and field."""

    def __init__(self, path: str, lineno: int, *, csv_cells: bool) -> None:
        self.path = path
        self.lineno = lineno
        self.csv_cells = csv_cells

    def error(self, field: str, expected: str, value: Any) -> CatalogError:
        return CatalogError(
            f"{self.path}, line {self.lineno}, field '{field}': {expected} (got {value!r})"
        )

    def text(self, field: str, value: Any) -> str:
        if (
            field == "id"
            and not self.csv_cells
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, "expected a non-empty string", value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no valid text
            msg = "expected valid Unicode text (no unpaired surrogate)"
            raise self.error(field, msg, value) from None
        return value

    def topics(self, tags: Any, topics: Any) -> dict[str, float]:
        has_tags, has_topics = _given(tags), _given(topics)
        if has_tags and has_topics:
            raise self.error("topics", "expected either 'tags' or 'topics', not both", topics)
        if not has_tags and not has_topics:
            raise self.error("tags", "expected either 'tags' or 'topics' to be given", tags)
        if has_tags:
            names = self._tags(tags)
            return {name: 1.0 / len(names) for name in names}
        weights = self._weights(topics)
        try:
            total = math.fsum(weights.values())
        except OverflowError:  # finite weights whose sum is not (1e308 + 1e308)
            total = math.inf
        if not math.isfinite(total):
            raise self.error("topics", "expected weights with a finite sum", topics)
        return {name: w / total for name, w in weights.items()}

    def _tags(self, value: Any) -> list[str]:
        if self.csv_cells:
            expected = "expected ';'-separated topic names"
            names = [s.strip() for s in value.split(";")]
            names = [s for s in names if s]
        else:
            expected = "expected a list of non-empty topic-name strings"
            if not isinstance(value, list) or not all(
                isinstance(s, str) and s.strip() for s in value
            ):
                raise self.error("tags", expected, value)
            names = [s.strip() for s in value]
        if not names:
            raise self.error("tags", expected, value)
        if len(set(names)) != len(names):
            raise self.error("tags", f"{expected} without repeats", value)
        return names

    def _weights(self, value: Any) -> dict[str, float]:
        if self.csv_cells:
            expected = "expected 'name:weight' pairs separated by ';' with finite weights > 0"
            pairs: list[tuple[str, Any]] = []
            for part in value.split(";"):
                if not part.strip():
                    continue
                name, sep, weight = part.rpartition(":")
                if not sep or not name.strip():
                    raise self.error("topics", expected, value)
                try:
                    pairs.append((name.strip(), float(weight)))
                except ValueError:
                    raise self.error("topics", expected, value) from None
        else:
            expected = "expected an object of topic names to finite weights > 0"
            if not isinstance(value, dict):
                raise self.error("topics", expected, value)
            pairs = []
            for name, weight in value.items():
                if isinstance(weight, bool) or not isinstance(weight, int | float):
                    raise self.error("topics", expected, value)
                try:
                    pairs.append((name.strip(), float(weight)))
                except OverflowError:
                    raise self.error("topics", expected, value) from None
        if not pairs or any(not name or not (math.isfinite(w) and w > 0) for name, w in pairs):
            raise self.error("topics", expected, value)
        weights = {name: float(w) for name, w in pairs}
        if len(weights) != len(pairs):
            raise self.error("topics", f"{expected} and no repeated names", value)
        return weights

    def quality(self, value: Any) -> float:
        if not _given(value):
            return _DEFAULT_QUALITY
        q: Any = value
        if self.csv_cells:
            try:
                q = float(value)
            except ValueError:
                q = None
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
            raise self.error("quality", "expected a number in [0, 1]", value)
        return float(q)

    def release_step(self, value: Any) -> int | None:
        if not _given(value):
            return None
        step: Any = value
        if self.csv_cells:
            try:
                step = int(value.strip())
            except ValueError:
                step = None
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 2**63:
            raise self.error("release_step", "expected an integer >= 0", value)
        return step

    def row(self, record: dict[str, Any]) -> _Row:
        return _Row(
            lineno=self.lineno,
            item_id=self.text("id", record.get("id")),
            title=self.text("title", record.get("title")),
            description=self.text("description", record.get("description")),
            topics=self.topics(record.get("tags"), record.get("topics")),
            quality=self.quality(record.get("quality")),
            release_step=self.release_step(record.get("release_step")),
        )


def _given(value: Any) -> bool:
    """Whether an optional or alternative field holds something (not absent, null or empty)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected_fields() -> str:
    return "expected one of " + ", ".join(_FIELDS)


def _read_csv(path: str, lines: Iterable[str]) -> Iterator[_Row]:
    reader = csv.reader(lines)
    header: list[str] | None = None
    last_line = 0
    try:
        for cells in reader:
            lineno, last_line = last_line + 1, reader.line_num
            if all(not c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                _check_header(path, lineno, header)
                continue
            parser = _RowParser(path, lineno, csv_cells=True)
            if len(cells) < len(header):
                raise parser.error(
                    header[len(cells)],
                    f"expected {len(header)} comma-separated cells as in the header",
                    len(cells),
                )
            if len(cells) > len(header):
                raise parser.error(
                    f"column {len(header) + 1}",
                    f"unexpected extra cell; the header has {len(header)} columns",
                    cells[len(header)],
                )
            yield parser.row(dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise CatalogError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from None


def _check_header(path: str, lineno: int, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name not in _FIELDS:
            raise CatalogError(
                f"{path}, line {lineno}, field '{name}': unknown column, {_expected_fields()} "
                f"(got {name!r})"
            )
        if name in seen:
            raise CatalogError(
                f"{path}, line {lineno}, field '{name}': expected each column once "
                f"(got {name!r} twice)"
            )
        seen.add(name)
    for name in _REQUIRED:
        if name not in seen:
            raise CatalogError(
                f"{path}, line {lineno}, field '{name}': expected a '{name}' column in the header "
                f"(got {header!r})"
            )
    if "tags" not in seen and "topics" not in seen:
        raise CatalogError(
            f"{path}, line {lineno}, field 'tags': expected a 'tags' or 'topics' column in the "
            f"header (got {header!r})"
        )


def _read_jsonl(path: str, lines: Iterable[str]) -> Iterator[_Row]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        line = line.rstrip("\r\n")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(
                f"{path}, line {lineno}: expected a JSON object ({exc.msg} at column "
                f"{exc.pos + 1}) (got {_excerpt(line)!r})"
            ) from None
        if not isinstance(record, dict):
            raise CatalogError(f"{path}, line {lineno}: expected a JSON object (got {record!r})")
        parser = _RowParser(path, lineno, csv_cells=False)
        for key, value in record.items():
            if key not in _FIELDS:
                raise parser.error(key, f"unknown field, {_expected_fields()}", value)
        for key in _REQUIRED:
            if key not in record:
                raise parser.error(key, "missing required field; expected a non-empty string", None)
        yield parser.row(record)


def load_catalog(
    path: str | os.PathLike[str],
    *,
    new_item_fraction: float = 0.0,
    release_horizon: int = 20_000,
    seed: int = 0,
) -> Catalog:
    """Load a catalog from a ``.csv`` or ``.jsonl`` file (format in the module docstring).

    Args:
        path: the file; its extension picks the format. Error messages quote it as given.
        new_item_fraction: fraction in ``[0, 1]`` of the items without an explicit
            ``release_step`` that are released later.
        release_horizon: those items get a release step uniform in ``[1, release_horizon]``.
        seed: seed of the random choice of those items and their steps.

    Returns:
        The catalog, with topic names in sorted order.

    Raises:
        CatalogError: on an unsupported extension, malformed content, an empty file, fewer than
            2 topics or a duplicate id.
        OSError: if the file cannot be opened.
    """
    check_float("new_item_fraction", new_item_fraction, 0.0, 1.0)
    check_int("release_horizon", release_horizon, 1)
    check_int("seed", seed, 0)
    shown = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise CatalogError(
            f"{shown}: unsupported catalog file extension, expected one of "
            f"{', '.join(_EXTENSIONS)} (got {Path(path).suffix!r})"
        )

    if Path(path).is_dir():
        raise CatalogError(f"{shown}: is a directory, expected a {' or '.join(_EXTENSIONS)} file")
    is_csv = suffix == ".csv"
    try:
        # CSV keeps its line endings for the csv module; JSONL gets universal newlines
        with open(path, encoding="utf-8-sig", newline="" if is_csv else None) as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{shown}: expected UTF-8 text ({exc})") from None
    if not text.strip():
        raise CatalogError(f"{shown}: expected at least 1 item (got an empty file)")

    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    read = _read_csv if is_csv else _read_jsonl
    for row in read(shown, io.StringIO(text, newline="" if is_csv else "\n")):
        if row.item_id in first_line:
            raise CatalogError(
                f"{shown}, line {row.lineno}, field 'id': expected a unique id, already used "
                f"on line {first_line[row.item_id]} (got {row.item_id!r})"
            )
        first_line[row.item_id] = row.lineno
        rows.append(row)
    if not rows:
        raise CatalogError(f"{shown}: expected at least 1 item (got a header and no rows)")
    names = sorted({name for row in rows for name in row.topics})
    if len(names) < 2:
        raise CatalogError(f"{shown}: expected at least 2 distinct topic names (got {names!r})")

    n = len(rows)
    column = {name: j for j, name in enumerate(names)}
    topics = np.zeros((n, len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        for name, weight in row.topics.items():
            topics[i, column[name]] = weight
    release = np.array(
        [-1 if row.release_step is None else row.release_step for row in rows], dtype=np.int64
    )
    missing = np.flatnonzero(release < 0)
    release[missing] = 0
    num_new = int(round(new_item_fraction * missing.size))
    if num_new:
        rng = np.random.default_rng(seed)
        new = rng.choice(missing, size=num_new, replace=False)
        release[new] = rng.integers(1, release_horizon + 1, size=num_new)
    return Catalog(
        item_ids=tuple(row.item_id for row in rows),
        titles=tuple(row.title for row in rows),
        descriptions=tuple(row.description for row in rows),
        topic_names=tuple(names),
        topics=topics,
        quality=np.array([row.quality for row in rows], dtype=np.float64),
        release_step=release,
    )


def save_catalog(catalog: Catalog, path: str | os.PathLike[str]) -> None:
    """Write ``catalog`` as JSONL, atomically (a temporary file in the same folder, then replace).

    Every line has ``id``, ``title``, ``description``, ``topics`` (the non-zero weights),
    ``quality`` and ``release_step``, so :func:`load_catalog` reads back the same catalog (topic
    columns in sorted-name order; unused topics are not written).

    Args:
        catalog: the catalog to write.
        path: the destination; it must end in ``.jsonl``.

    Raises:
        ValueError: if ``path`` does not end in ``.jsonl``.
    """
    target = Path(path)
    if target.suffix.lower() != ".jsonl":
        raise ValueError(f"'path' must end with '.jsonl' (got {str(path)!r})")
    names = catalog.topic_names
    with atomic_open(target, "w") as handle:
        for i in range(catalog.num_items):
            row = catalog.topics[i]
            record = {
                "id": catalog.item_ids[i],
                "title": catalog.titles[i],
                "description": catalog.descriptions[i],
                "topics": {names[j]: float(row[j]) for j in np.flatnonzero(row > 0)},
                "quality": float(catalog.quality[i]),
                "release_step": int(catalog.release_step[i]),
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def build_catalog(config: EnvConfig) -> Catalog:
    """Return the catalog of an environment config.

    Args:
        config: the environment config. If ``config.catalog_path`` is set, the file is loaded
            with ``config.catalog``'s ``new_item_fraction``, ``release_horizon`` and ``seed``.
            Otherwise ``config.catalog`` is generated.

    Returns:
        The catalog.
    """
    if config.catalog_path is not None:
        return load_catalog(
            config.catalog_path,
            new_item_fraction=config.catalog.new_item_fraction,
            release_horizon=config.catalog.release_horizon,
            seed=config.catalog.seed,
        )
    return generate_catalog(config.catalog)
