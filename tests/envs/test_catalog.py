"""Tests of the item catalog: the generator, the Catalog invariants, and the CSV/JSONL loader."""

from __future__ import annotations

import copy as copy_module
import json
import pickle
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftrec.envs.catalog import (
    TOPIC_NAMES,
    Catalog,
    CatalogError,
    build_catalog,
    generate_catalog,
    load_catalog,
    save_catalog,
)
from driftrec.envs.config import CatalogConfig, EnvConfig


def _gen(**kwargs: Any) -> Catalog:
    return generate_catalog(CatalogConfig(**kwargs))


def _raises(msg: str) -> Any:
    return pytest.raises(CatalogError, match=f"^{re.escape(msg)}$")


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _jsonl(path: Path, records: list[dict[str, Any]]) -> str:
    return _write(path, "".join(json.dumps(r) + "\n" for r in records))


def _small_catalog(**overrides: Any) -> Catalog:
    fields: dict[str, Any] = {
        "item_ids": ("a", "b", "c"),
        "titles": ("Red rocket", "Slow soup", "Late goal"),
        "descriptions": ("About rockets.", "About soup.", "About goals."),
        "topic_names": ("space", "food"),
        "topics": np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        "quality": np.array([0.1, 0.5, 0.9]),
        "release_step": np.array([0, 3, 10]),
    }
    fields.update(overrides)
    return Catalog(**fields)


# --------------------------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------------------------
def test_topic_names_are_24_unique_strings() -> None:
    """The generator names 24 distinct topics."""
    assert len(TOPIC_NAMES) == 24
    assert len(set(TOPIC_NAMES)) == 24


def test_generate_shapes_dtypes_and_ids() -> None:
    """Arrays have the documented shapes and dtypes; ids are unique 'item-00000' strings."""
    cat = _gen(num_items=300, num_topics=7)
    assert (cat.num_items, cat.num_topics) == (300, 7)
    assert cat.topic_names == TOPIC_NAMES[:7]
    assert cat.topics.shape == (300, 7) and cat.topics.dtype == np.float64
    assert cat.quality.shape == (300,) and cat.quality.dtype == np.float64
    assert cat.release_step.shape == (300,) and cat.release_step.dtype == np.int64
    assert len(cat.titles) == len(cat.descriptions) == 300
    assert cat.item_ids[0] == "item-00000" and cat.item_ids[-1] == "item-00299"
    assert len(set(cat.item_ids)) == 300


def test_generated_arrays_are_read_only() -> None:
    """The catalog's arrays cannot be written to."""
    cat = _gen(num_items=10)
    for array in (cat.topics, cat.quality, cat.release_step):
        with pytest.raises(ValueError):
            array[0] = 0


def test_topic_rows_are_mixtures_of_at_most_two_topics() -> None:
    """Rows are non-negative, sum to 1 and have at most two non-zero topics."""
    cat = _gen(num_items=2000)
    assert (cat.topics >= 0).all()
    np.testing.assert_allclose(cat.topics.sum(axis=1), 1.0, atol=1e-12)
    assert ((cat.topics > 0).sum(axis=1) <= 2).all()


@pytest.mark.parametrize("purity", [0.5, 0.65, 0.8, 0.95])
def test_purity_is_honoured(purity: float) -> None:
    """The mean main-topic weight equals topic_purity, and the main topic is the arg-max."""
    cat = _gen(num_items=20_000, topic_purity=purity)
    main = cat.topics.max(axis=1)
    assert abs(main.mean() - purity) < 0.005
    assert main.min() >= 0.5


def test_purity_one_gives_single_topic_items() -> None:
    """topic_purity=1.0 makes every item one-hot."""
    cat = _gen(num_items=500, topic_purity=1.0)
    assert ((cat.topics > 0).sum(axis=1) == 1).all()
    assert (cat.topics.max(axis=1) == 1.0).all()


def test_every_topic_is_used_and_balanced() -> None:
    """Main topics are balanced: each of the K topics has N/K items (+-1)."""
    cat = _gen(num_items=1003, num_topics=24)
    counts = np.bincount(cat.primary_topic(), minlength=24)
    assert counts.min() >= 1003 // 24 and counts.max() <= 1003 // 24 + 1


def test_same_seed_gives_identical_catalog() -> None:
    """The same config gives bit-for-bit identical arrays and texts."""
    a = _gen(num_items=500, new_item_fraction=0.3, seed=7)
    b = _gen(num_items=500, new_item_fraction=0.3, seed=7)
    assert a.texts() == b.texts() and a.item_ids == b.item_ids
    for x, y in ((a.topics, b.topics), (a.quality, b.quality), (a.release_step, b.release_step)):
        assert x.tobytes() == y.tobytes()
    assert a.fingerprint() == b.fingerprint()


def test_other_seed_gives_other_catalog() -> None:
    """A different seed changes texts, topics, quality and the fingerprint."""
    a, b = _gen(num_items=200, seed=0), _gen(num_items=200, seed=1)
    assert a.texts() != b.texts()
    assert not np.array_equal(a.topics, b.topics)
    assert not np.array_equal(a.quality, b.quality)
    assert a.fingerprint() != b.fingerprint()


def test_generator_uses_no_global_numpy_random_state() -> None:
    """Generating does not consume or depend on numpy's global random state."""
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = _gen(num_items=100)
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(999)
    assert _gen(num_items=100).fingerprint() == a.fingerprint()


def test_release_fraction_is_honoured() -> None:
    """Exactly round(fraction * N) items are released later, at steps in [1, horizon]."""
    cat = _gen(num_items=1000, new_item_fraction=0.25, release_horizon=50)
    late = cat.release_step > 0
    assert late.sum() == 250
    assert cat.release_step[late].min() >= 1 and cat.release_step.max() <= 50
    assert not _gen(num_items=1000).release_step.any()


def test_quality_follows_beta() -> None:
    """Quality lies in [0, 1] with the Beta(alpha, beta) mean."""
    cat = _gen(num_items=20_000, quality_alpha=2.0, quality_beta=6.0)
    assert 0.0 <= cat.quality.min() and cat.quality.max() <= 1.0
    assert abs(cat.quality.mean() - 0.25) < 0.01


def test_titles_and_descriptions_have_the_documented_form() -> None:
    """Titles have 3 to 7 words and a capital first letter, and descriptions are one sentence."""
    cat = _gen(num_items=3000, num_topics=24)
    assert all(3 <= len(t.split()) <= 7 and t[0] == t[0].upper() for t in cat.titles)
    assert all(d[0].isupper() and d.endswith(".") and d.count(".") == 1 for d in cat.descriptions)
    assert cat.texts()[0] == f"{cat.titles[0]}. {cat.descriptions[0]}"


def test_vocabulary_carries_the_topics() -> None:
    """Items of the same main topic share far more words than items of different topics."""
    cat = _gen(num_items=1200, num_topics=24, seed=3)
    words = [set(re.findall(r"[a-z0-9'-]+", text.lower())) for text in cat.texts()]
    vocab = sorted(set().union(*words))
    index = {w: j for j, w in enumerate(vocab)}
    x = np.zeros((len(words), len(vocab)))
    for i, ws in enumerate(words):
        x[i, [index[w] for w in ws]] = 1.0
    x = x[:, x.mean(axis=0) < 0.1]  # drop template words shared across topics
    inter = x @ x.T
    size = x.sum(axis=1)
    jaccard = inter / np.maximum(size[:, None] + size[None, :] - inter, 1)
    topic = cat.primary_topic()
    same = topic[:, None] == topic[None, :]
    np.fill_diagonal(same, False)
    different = topic[:, None] != topic[None, :]
    assert jaccard[same].mean() > 3 * jaccard[different].mean()


def test_large_catalog_builds_fast() -> None:
    """100,000 items are generated in well under 10 s (1,000 in well under 0.5 s)."""
    start = time.perf_counter()
    cat = _gen(num_items=100_000)
    assert time.perf_counter() - start < 10.0
    assert cat.num_items == 100_000
    start = time.perf_counter()
    _gen(num_items=1000)
    assert time.perf_counter() - start < 0.5


# --------------------------------------------------------------------------------------------
# Catalog methods and validation
# --------------------------------------------------------------------------------------------
def test_released_and_primary_topic() -> None:
    """released() compares release_step with the clock; primary_topic() is the row arg-max."""
    cat = _small_catalog()
    assert cat.released(0).tolist() == [True, False, False]
    assert cat.released(10).tolist() == [True, True, True]
    assert cat.primary_topic().tolist() == [0, 1, 0]
    assert cat.primary_topic().dtype == np.int64


def test_fingerprint_is_pinned_and_depends_only_on_ids_and_texts() -> None:
    """The fingerprint is a fixed SHA-256 of ids and texts, blind to topics and quality."""
    cat = _small_catalog()
    assert cat.fingerprint() == "4d394b62601aea4eb487426fd7b345bc5bfe011881dd00569837b78931c01146"
    assert _small_catalog(quality=np.array([1.0, 1.0, 1.0])).fingerprint() == cat.fingerprint()
    assert _small_catalog(titles=("Red rocket", "Slow soup", "Late goals")).fingerprint() != (
        cat.fingerprint()
    )
    assert _small_catalog(item_ids=("a", "b", "d")).fingerprint() != cat.fingerprint()


def test_catalog_copies_inputs() -> None:
    """Catalog keeps read-only copies, so the caller's arrays stay writable and unshared."""
    quality = np.array([0.1, 0.5, 0.9])
    cat = _small_catalog(quality=quality, release_step=[0, 1, 2])
    quality[0] = 0.7
    assert cat.quality[0] == 0.1
    assert cat.release_step.dtype == np.int64 and not cat.release_step.flags.writeable


def test_pickle_and_deepcopy_keep_arrays_read_only() -> None:
    """A pickled or deep-copied catalog is equal in content and still read-only."""
    cat = _gen(num_items=50)
    for clone in (pickle.loads(pickle.dumps(cat)), copy_module.deepcopy(cat)):
        assert clone.fingerprint() == cat.fingerprint()
        assert np.array_equal(clone.topics, cat.topics)
        assert not any(a.flags.writeable for a in (clone.topics, clone.quality, clone.release_step))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"item_ids": ("a", "b", "a")}, "'item_ids' must be unique (got 'a' twice)"),
        ({"titles": ("x", "y")}, "'titles' must have length 3 like 'item_ids' (got 2)"),
        ({"descriptions": ("x", "", "z")}, "'descriptions' must hold non-empty strings"),
        ({"topic_names": ("space",)}, "'topic_names' must hold at least 2 topics (got 1)"),
        ({"topic_names": ("a", "b", "c")}, "'topics' must have shape (3, 3) (got (3, 2))"),
        ({"topics": np.ones((3, 2))}, "'topics' rows must sum to 1 (got 2.0 in row 0)"),
        ({"topics": np.array([[1.5, -0.5]] * 3)}, "'topics' must be finite and >= 0"),
        ({"quality": np.array([0.1, 1.5, 0.2])}, "'quality' must be finite numbers in [0, 1]"),
        ({"quality": np.zeros(4)}, "'quality' must have shape (3,) (got (4,))"),
        ({"release_step": np.array([0, -1, 2])}, "'release_step' must be integers >= 0"),
        ({"release_step": np.array([0.0, 1.0, 2.0])}, "'release_step' must be an integer array"),
    ],
)
def test_catalog_validates_fields(overrides: dict[str, Any], message: str) -> None:
    """Bad fields raise ValueError naming the field and what was expected."""
    with pytest.raises(ValueError, match=re.escape(message)):
        _small_catalog(**overrides)


# --------------------------------------------------------------------------------------------
# loader: good files
# --------------------------------------------------------------------------------------------
def test_csv_loads_tags_topics_and_defaults(tmp_path: Path) -> None:
    """A CSV with tags, weighted topics, defaults and a quoted multi-line cell loads correctly."""
    path = _write(
        tmp_path / "catalog.csv",
        "id,title,description,tags,topics,quality,release_step\n"
        "x1,Moon walk,A walk on the moon.,space;travel,,0.9,5\n"
        'x2,Soup,"A soup,\nwith a newline.",,food:3;space:1,,\n'
        "\n"
        "x3,Road trip,Driving far.,travel,,,\n",
    )
    cat = load_catalog(path)
    assert cat.item_ids == ("x1", "x2", "x3")
    assert cat.topic_names == ("food", "space", "travel")
    np.testing.assert_allclose(cat.topics, [[0, 0.5, 0.5], [0.75, 0.25, 0], [0, 0, 1]])
    assert cat.quality.tolist() == [0.9, 0.5, 0.5]
    assert cat.release_step.tolist() == [5, 0, 0]
    assert cat.descriptions[1] == "A soup,\nwith a newline."
    assert cat.texts()[0] == "Moon walk. A walk on the moon."


def test_jsonl_loads_with_blank_lines_and_integer_ids(tmp_path: Path) -> None:
    """JSONL skips blank lines, accepts integer ids and null optional fields."""
    path = _write(
        tmp_path / "catalog.jsonl",
        '{"id": 7, "title": "T", "description": "D.", "tags": ["b", "a"], "quality": null}\n'
        "\n   \n"
        '{"id": "8", "title": "U", "description": "E.", "topics": {"a": 1, "c": 3},'
        ' "release_step": 4}\n',
    )
    cat = load_catalog(path)
    assert cat.item_ids == ("7", "8")
    assert cat.topic_names == ("a", "b", "c")
    np.testing.assert_allclose(cat.topics, [[0.5, 0.5, 0], [0.25, 0, 0.75]])
    assert cat.quality.tolist() == [0.5, 0.5]
    assert cat.release_step.tolist() == [0, 4]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    """save_catalog -> load_catalog keeps ids, texts, quality, release steps and topics."""
    cat = _gen(num_items=400, num_topics=6, new_item_fraction=0.3, seed=5)
    path = tmp_path / "saved.jsonl"
    save_catalog(cat, path)
    back = load_catalog(path, new_item_fraction=0.5, seed=1)  # explicit steps are kept
    assert back.item_ids == cat.item_ids and back.texts() == cat.texts()
    assert back.fingerprint() == cat.fingerprint()
    assert np.array_equal(back.quality, cat.quality)
    assert np.array_equal(back.release_step, cat.release_step)
    assert back.topic_names == tuple(sorted(cat.topic_names))
    columns = [back.topic_names.index(name) for name in cat.topic_names]
    np.testing.assert_allclose(back.topics[:, columns], cat.topics, rtol=0, atol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["saved.jsonl"]  # no temporary file left


def test_save_overwrites_and_rejects_other_extensions(tmp_path: Path) -> None:
    """Saving replaces an existing file; a non-.jsonl destination is refused."""
    path = tmp_path / "c.jsonl"
    path.write_text("old\n")
    save_catalog(_small_catalog(), path)
    assert load_catalog(path).item_ids == ("a", "b", "c")
    with pytest.raises(ValueError, match=r"'path' must end with '\.jsonl'"):
        save_catalog(_small_catalog(), tmp_path / "c.csv")


def test_new_item_fraction_only_affects_rows_without_release_step(tmp_path: Path) -> None:
    """A seeded fraction of rows without release_step is released in [1, horizon]."""
    rows = [
        {"id": f"i{i}", "title": "T", "description": "D.", "tags": ["a", "b"]} for i in range(100)
    ]
    rows[0]["release_step"] = 0
    rows[1]["release_step"] = 9
    path = _jsonl(tmp_path / "c.jsonl", rows)
    a = load_catalog(path, new_item_fraction=0.5, release_horizon=30, seed=2)
    assert a.release_step[:2].tolist() == [0, 9]
    assert (a.release_step[2:] > 0).sum() == 49  # round(0.5 * 98)
    assert a.release_step.max() <= 30
    assert np.array_equal(
        a.release_step,
        load_catalog(path, new_item_fraction=0.5, seed=2, release_horizon=30).release_step,
    )
    assert not np.array_equal(
        a.release_step,
        load_catalog(path, new_item_fraction=0.5, seed=3, release_horizon=30).release_step,
    )
    assert not load_catalog(path).release_step[2:].any()


def test_build_catalog_generates_or_loads(tmp_path: Path) -> None:
    """build_catalog generates from config.catalog or loads config.catalog_path."""
    config = EnvConfig(catalog=CatalogConfig(num_items=50, num_topics=3, seed=4))
    assert (
        build_catalog(config).fingerprint()
        == _gen(num_items=50, num_topics=3, seed=4).fingerprint()
    )
    path = tmp_path / "c.jsonl"
    save_catalog(_small_catalog(), path)
    loaded = build_catalog(config.with_overrides(catalog_path=str(path)))
    assert loaded.item_ids == ("a", "b", "c")


# --------------------------------------------------------------------------------------------
# loader: exact error messages
# --------------------------------------------------------------------------------------------
_HEADER = "id,title,description,tags,quality,release_step\n"


def test_error_missing_required_field_csv(tmp_path: Path) -> None:
    """An empty required CSV cell names the line and field."""
    path = _write(tmp_path / "c.csv", _HEADER + "a,Title,Desc.,x,,\nb,,Desc.,y,,\n")
    with _raises(f"{path}, line 3, field 'title': expected a non-empty string (got '')"):
        load_catalog(path)


def test_error_missing_required_field_jsonl(tmp_path: Path) -> None:
    """A missing required JSONL key names the line and field."""
    path = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "title": "T", "tags": ["x", "y"]}])
    msg = f"{path}, line 1, field 'description': missing required field; expected a non-empty "
    with _raises(msg + "string (got None)"):
        load_catalog(path)


def test_error_missing_required_column(tmp_path: Path) -> None:
    """A CSV header without a required column is reported on line 1."""
    path = _write(tmp_path / "c.csv", "id,title,tags\na,T,x\n")
    msg = (
        f"{path}, line 1, field 'description': expected a 'description' column in the header "
        "(got ['id', 'title', 'tags'])"
    )
    with _raises(msg):
        load_catalog(path)


def test_error_bad_quality(tmp_path: Path) -> None:
    """A non-numeric quality is reported with its raw value."""
    path = _write(tmp_path / "catalog.csv", _HEADER + "a,T,D.,x;y,0.2,\nb,T,D.,x,high,\n")
    with _raises(f"{path}, line 3, field 'quality': expected a number in [0, 1] (got 'high')"):
        load_catalog(path)


def test_error_quality_out_of_range_jsonl(tmp_path: Path) -> None:
    """A JSONL quality above 1 is reported."""
    path = _jsonl(
        tmp_path / "c.jsonl",
        [{"id": "a", "title": "T", "description": "D.", "tags": ["x", "y"], "quality": 1.5}],
    )
    with _raises(f"{path}, line 1, field 'quality': expected a number in [0, 1] (got 1.5)"):
        load_catalog(path)


def test_error_negative_release_step(tmp_path: Path) -> None:
    """A negative release_step is reported."""
    path = _write(tmp_path / "c.csv", _HEADER + "a,T,D.,x;y,,-3\n")
    with _raises(f"{path}, line 2, field 'release_step': expected an integer >= 0 (got '-3')"):
        load_catalog(path)


def test_error_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    """A repeated id names its line and the line that used it first."""
    path = _write(tmp_path / "c.csv", _HEADER + "a,T,D.,x,,\nb,T,D.,y,,\n\na,T,D.,x,,\n")
    msg = f"{path}, line 5, field 'id': expected a unique id, already used on line 2 (got 'a')"
    with _raises(msg):
        load_catalog(path)


def test_error_unknown_column(tmp_path: Path) -> None:
    """An unknown CSV column is an error, not silently dropped."""
    path = _write(tmp_path / "c.csv", "id,title,description,tags,colour\na,T,D.,x,red\n")
    msg = (
        f"{path}, line 1, field 'colour': unknown column, expected one of id, title, "
        "description, tags, topics, quality, release_step (got 'colour')"
    )
    with _raises(msg):
        load_catalog(path)


def test_error_unknown_jsonl_key(tmp_path: Path) -> None:
    """An unknown JSONL key is an error naming it and its value."""
    path = _jsonl(
        tmp_path / "c.jsonl",
        [{"id": "a", "title": "T", "description": "D.", "tags": ["x"], "year": 1999}],
    )
    msg = (
        f"{path}, line 1, field 'year': unknown field, expected one of id, title, "
        "description, tags, topics, quality, release_step (got 1999)"
    )
    with _raises(msg):
        load_catalog(path)


def test_error_bad_json_line(tmp_path: Path) -> None:
    """Invalid JSON is reported with its line number and column."""
    good = '{"id": "a", "title": "T", "description": "D.", "tags": ["x", "y"]}'
    path = _write(tmp_path / "c.jsonl", good + "\n\n" + '{"id": "b", "title": }\n')
    msg = (
        f"{path}, line 3: expected a JSON object (Expecting value at column 22) "
        """(got '{"id": "b", "title": }')"""
    )
    with _raises(msg):
        load_catalog(path)


def test_error_json_line_not_an_object(tmp_path: Path) -> None:
    """A JSONL line holding a non-object is reported."""
    path = _write(tmp_path / "c.jsonl", "[1, 2]\n")
    with _raises(f"{path}, line 1: expected a JSON object (got [1, 2])"):
        load_catalog(path)


def test_error_unsupported_extension(tmp_path: Path) -> None:
    """A file that is neither .csv nor .jsonl is refused before reading."""
    path = str(tmp_path / "catalog.parquet")
    msg = (
        f"{path}: unsupported catalog file extension, expected one of .csv, .jsonl (got '.parquet')"
    )
    with _raises(msg):
        load_catalog(path)


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_error_empty_file(tmp_path: Path, name: str) -> None:
    """An empty (or blank) file is reported."""
    path = _write(tmp_path / name, "\n  \n")
    with _raises(f"{path}: expected at least 1 item (got an empty file)"):
        load_catalog(path)


def test_error_header_without_rows(tmp_path: Path) -> None:
    """A CSV with only a header has no items."""
    path = _write(tmp_path / "c.csv", _HEADER)
    with _raises(f"{path}: expected at least 1 item (got a header and no rows)"):
        load_catalog(path)


def test_error_fewer_than_two_topics(tmp_path: Path) -> None:
    """A catalog whose items all share one topic is refused."""
    path = _write(tmp_path / "c.csv", _HEADER + "a,T,D.,x,,\nb,T,D.,x,,\n")
    with _raises(f"{path}: expected at least 2 distinct topic names (got ['x'])"):
        load_catalog(path)


def test_error_tags_and_topics_both_or_neither(tmp_path: Path) -> None:
    """Each row gives exactly one of tags and topics."""
    header = "id,title,description,tags,topics\n"
    path = _write(tmp_path / "c.csv", header + "a,T,D.,x,x:1\n")
    with _raises(
        f"{path}, line 2, field 'topics': expected either 'tags' or 'topics', not both (got 'x:1')"
    ):
        load_catalog(path)
    path = _write(tmp_path / "c.csv", header + "a,T,D.,,\n")
    with _raises(
        f"{path}, line 2, field 'tags': expected either 'tags' or 'topics' to be given (got '')"
    ):
        load_catalog(path)


@pytest.mark.parametrize("cell", ["x:0", "x:abc", "x:inf", ":1", "x:1;x:2"])
def test_error_bad_topic_weights(tmp_path: Path, cell: str) -> None:
    """Zero, non-numeric, infinite, unnamed or repeated topic weights are refused."""
    path = _write(tmp_path / "c.csv", f"id,title,description,topics\na,T,D.,{cell}\n")
    with pytest.raises(CatalogError, match=rf"^{re.escape(path)}, line 2, field 'topics': "):
        load_catalog(path)


def test_error_wrong_number_of_cells(tmp_path: Path) -> None:
    """A CSV row with too few or too many cells is reported."""
    header = "id,title,description,tags\n"
    path = _write(tmp_path / "c.csv", header + "a,T,D.\n")
    with _raises(
        f"{path}, line 2, field 'tags': expected 4 comma-separated cells as in the header (got 3)"
    ):
        load_catalog(path)
    path = _write(tmp_path / "c.csv", header + "a,T,D.,x,extra\n")
    with _raises(
        f"{path}, line 2, field 'column 5': unexpected extra cell; the header has 4 "
        "columns (got 'extra')"
    ):
        load_catalog(path)


def test_loader_argument_validation(tmp_path: Path) -> None:
    """Bad loader arguments raise the config-style errors."""
    path = _write(tmp_path / "c.csv", _HEADER + "a,T,D.,x;y,,\n")
    with pytest.raises(ValueError, match="'new_item_fraction' must be a finite number"):
        load_catalog(path, new_item_fraction=1.5)
    with pytest.raises(ValueError, match="'release_horizon' must be an integer >= 1"):
        load_catalog(path, release_horizon=0)


def test_jargon_texts_tell_the_topic_only_by_its_made_up_words() -> None:
    """text_style "jargon": the title and sentence use another topic's vocabulary (none of the
    item's own topic's nouns), and a last phrase carries 2 of the topic's 4 made-up words,
    shared by every item of that topic and by no other; topics and quality are those of the
    plain catalog with the same seed, and the texts are seeded."""
    from driftrec.envs.catalog import (
        _VOCABULARY,
        JARGON_WORDS_PER_ITEM,
        JARGON_WORDS_PER_TOPIC,
    )

    kwargs = {"num_items": 240, "num_topics": 6, "topic_purity": 1.0, "seed": 4}
    cat = _gen(**kwargs, text_style="jargon")
    plain = _gen(**kwargs)
    np.testing.assert_array_equal(cat.topics, plain.topics)
    np.testing.assert_array_equal(cat.quality, plain.quality)
    assert cat.texts() == _gen(**kwargs, text_style="jargon").texts()
    template = {"under", "and", "call", "it", "even", "as"}
    main = cat.primary_topic()
    lexicons: list[set[str]] = [set() for _ in range(6)]
    for i, text in enumerate(cat.texts()):
        decoy, phrase = text.rsplit(". ", 1)  # the jargon phrase is the last sentence
        words = set(re.findall(r"\b[a-z]+\b", phrase)) - template
        assert len(words) == JARGON_WORDS_PER_ITEM, phrase
        lexicons[int(main[i])] |= words
        own = {n for n in _VOCABULARY[int(main[i])][1] if " " not in n and len(n) > 4}
        assert not own & set(re.findall(r"[a-z]+", decoy.lower())), text
    for k in range(6):
        assert len(lexicons[k]) == JARGON_WORDS_PER_TOPIC, lexicons[k]
        for other in range(k + 1, 6):
            assert not lexicons[k] & lexicons[other]
    with pytest.raises(ValueError, match=r"^'text_style' must be one of 'plain', 'jargon'"):
        CatalogConfig(text_style="code")
