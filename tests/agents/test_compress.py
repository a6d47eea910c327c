"""The compressed attention recommender: folding is exact, int8 is close, files round-trip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from driftrec.agents.attention import AttentionConfig, AttentionRecommender
from driftrec.agents.compress import (
    CompressedRecommender,
    DistilConfig,
    ScoreActor,
    compress_recommender,
    distil_recommender,
    fold_recommender,
    load_compressed,
    quantize_int8,
    save_compressed,
)

N, E, H = 40, 24, 6


def _raises(kind: type[Exception], msg: str) -> pytest.RaisesContext[Exception]:
    """Expect exactly ``msg``."""
    return pytest.raises(kind, match=f"^{re.escape(msg)}$")


def _model(seed: int = 0, **overrides: object) -> AttentionRecommender:
    """A tiny recommender with random (not initial) weights and some unreleased items."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(N, E)).astype(np.float32)
    release = np.where(np.arange(N) % 7 == 0, 5, 0)
    kwargs = dict(embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, match_dim=6, history_len=H)
    kwargs.update(overrides)
    model = AttentionRecommender(AttentionConfig(**kwargs), table, release)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape))
    return model.eval()


def _obs(rng: np.random.Generator, b: int = 24) -> torch.Tensor:
    """Observations with padding, an empty history (row 0) and clocks before/after releases."""
    o = np.zeros((b, 3 * H + 2), dtype=np.float32)
    o[:, :H] = rng.integers(0, N, (b, H))
    o[:, H : 2 * H] = rng.random((b, H)) < 0.4
    o[:, 2 * H : 3 * H] = rng.random((b, H)) < 0.75
    o[0, 2 * H : 3 * H] = 0.0  # an empty history
    o[1, 2 * H : 3 * H - 2] = 0.0  # only the two newest positions are real
    o[:, -1] = rng.integers(0, 10, b) / 1000.0  # clock (CLOCK_SCALE = 1000): some before step 5
    return torch.as_tensor(o)


VARIANTS = [
    {},
    {"match_attention": False},
    {"num_layers": 2},
    {"zero_start_state": False},
    {"content_match": False},
    {"use_id_embeddings": True, "item_bias": False},
    {"recency_bias": False, "prior_residual": False},
    {"policy_tilt": True, "carryover": True},
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(o) or "default")
def test_fold_matches_the_full_model(overrides: dict[str, object]) -> None:
    """Folded scores, user state and history attention equal the full model's (float rounding)."""
    model = _model(**overrides)
    folded = fold_recommender(model)
    x = _obs(np.random.default_rng(1))
    with torch.inference_mode():
        full, small = model(x), folded(x)
        floor = torch.finfo(torch.float32).min
        assert torch.equal(full.scores == floor, small.scores == floor)  # same unreleased items
        assert (full.scores == floor).any() and (full.scores > floor).any()
        released = full.scores > floor
        torch.testing.assert_close(
            small.scores[released], full.scores[released], atol=1e-4, rtol=1e-5
        )
        torch.testing.assert_close(small.user_state, full.user_state, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            folded.history_attention(x), model.history_attention(x), atol=1e-6, rtol=1e-5
        )
        if model.config.content_match:
            torch.testing.assert_close(
                folded.match_attention(x), model.match_attention(x), atol=1e-6, rtol=1e-5
            )
    assert not folded.quantized
    assert sum(p.numel() for p in folded.parameters() if p.requires_grad) == 0


def test_fold_leaves_the_model_alone_and_drops_the_text_table() -> None:
    """Folding copies: the source model's weights are unchanged, and the LM table is not kept."""
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_recommender(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(b.shape != model.item_table.shape for b in folded.buffers())


def test_int8_quantises_the_score_head_and_stays_close() -> None:
    """int8 (head): the score head is a dynamic int8 Linear; scores stay within 2% of their spread
    and the greedy item agrees on almost every observation."""
    model = _model()
    q = compress_recommender(model, "int8")
    assert q.quantized and q.int8_scope == "head"
    assert type(q.score_head).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert isinstance(q.last_kv, torch.nn.Linear)  # the encoder stays float
    x = _obs(np.random.default_rng(2), 256)
    with torch.inference_mode():
        full, small = model(x).scores, q(x).scores
    released = full > torch.finfo(torch.float32).min
    err = (full - small)[released].abs().mean()
    assert err < 0.02 * full[released].std()
    assert (full.argmax(1) == small.argmax(1)).float().mean() >= 0.95


def test_int8_scope_all_quantises_the_encoder_too() -> None:
    """scope='all' also quantises the encoder's Linears; never the feedback projection."""
    q = quantize_int8(fold_recommender(_model(num_layers=2)), "all")
    names = {n for n, m in q.named_modules() if ".quantized.dynamic" in type(m).__module__}
    assert {"score_head", "last_q", "last_kv", "layers.0.attn.qkv", "layers.0.mlp.2"} <= names
    assert "feedback_proj" not in names


def test_quantize_errors() -> None:
    """Bad scope, a quantised module and a full model are refused with what was expected."""
    folded = fold_recommender(_model())
    with _raises(ValueError, "'scope' must be one of ['head', 'all'] (got 'x')"):
        quantize_int8(folded, "x")
    with pytest.raises(ValueError, match="^the module is already int8-quantised$"):
        quantize_int8(quantize_int8(folded))
    with pytest.raises(TypeError, match="fold the model first with fold_recommender"):
        quantize_int8(_model())  # type: ignore[arg-type]
    with _raises(ValueError, "'method' must be one of ['fold', 'int8', 'distil'] (got 'zip')"):
        compress_recommender(_model(), "zip")
    with pytest.raises(ValueError, match="^method 'distil' needs 'observations'"):
        compress_recommender(_model(), "distil")


def test_out_of_catalog_ids_are_refused() -> None:
    """An observation naming an item outside the catalog is a ValueError naming the range."""
    folded = fold_recommender(_model())
    x = _obs(np.random.default_rng(3), 2)
    x[0, 0] = N + 3
    x[0, 2 * H] = 1.0
    msg = f"observed item ids must be in [0, {N - 1}] (got 0..{N + 3}); "
    msg += "is this policy for this catalog?"
    with _raises(ValueError, msg):
        folded(x)


@pytest.mark.parametrize("method", ["int8", "fold"])
def test_save_and_load_round_trip(tmp_path: Path, method: str) -> None:
    """A saved policy loads (weights_only) into a module giving exactly the same scores."""
    folded = fold_recommender(_model())
    acting = folded if method == "fold" else quantize_int8(folded)
    path = save_compressed(folded, tmp_path / "p.pt", method=method, metadata={"run": "r"})
    loaded, info = load_compressed(path)
    assert info == {"method": method, "int8_scope": "head", "metadata": {"run": "r"}}
    assert loaded.quantized == (method != "fold")
    x = _obs(np.random.default_rng(4))
    with torch.inference_mode():
        assert torch.equal(loaded(x).scores, acting(x).scores)
        assert torch.equal(loaded.history_attention(x), acting.history_attention(x))
    assert [p.name for p in tmp_path.iterdir()] == ["p.pt"]  # no temporary file left behind


def test_load_errors(tmp_path: Path) -> None:
    """Missing, unreadable and foreign files each give one error naming the file."""
    missing = tmp_path / "missing.pt"
    with _raises(
        FileNotFoundError, f"{missing} does not exist: expected a file 'driftrec compress' wrote"
    ):
        load_compressed(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=f"^{re.escape(str(junk))} cannot be read as a compressed"):
        load_compressed(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something-else"}, foreign)
    msg = f"{foreign}: 'format' must be 'driftrec-compressed-recommender/1' (got 'something-else')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        load_compressed(foreign)
    with pytest.raises(TypeError, match="must be the float CompressedRecommender"):
        save_compressed(quantize_int8(fold_recommender(_model())), tmp_path / "q.pt", method="int8")


def test_score_actor_greedy_sampled_and_slates() -> None:
    """Greedy is the argmax (top-k best first); samples follow the softmax and skip unreleased."""
    model = _model()
    x = _obs(np.random.default_rng(5), 64)
    with torch.inference_mode():
        scores = model(x).scores
    actor = ScoreActor(model, seed=0)
    greedy, _ = actor.predict(x.numpy(), deterministic=True)
    assert np.array_equal(greedy, scores.argmax(1).numpy())
    slates, _ = ScoreActor(model, slate_size=3).predict(x.numpy(), deterministic=True)
    assert np.array_equal(slates, torch.topk(scores, 3, dim=1).indices.numpy())
    a, _ = ScoreActor(model, slate_size=3, seed=7).predict(x.numpy())
    b, _ = ScoreActor(model, slate_size=3, seed=7).predict(x.numpy())
    assert np.array_equal(a, b)  # same seed, same draw
    assert all(len(set(row)) == 3 for row in a.tolist())
    floor = torch.finfo(torch.float32).min
    picked = torch.gather(scores, 1, torch.as_tensor(a))
    assert (picked > floor).all()  # never an unreleased item
    single, _ = actor.predict(x.numpy()[0])
    assert np.ndim(single) == 0

    class TwoItems(torch.nn.Module):  # softmax([0, log 3]) = [0.25, 0.75]
        def forward(self, obs: torch.Tensor) -> object:
            from driftrec.agents.attention import RecommenderOutput

            s = torch.tensor([[0.0, float(np.log(3.0))]]).expand(obs.shape[0], 2)
            return RecommenderOutput(scores=s, user_state=s)

    draws, _ = ScoreActor(TwoItems(), seed=1).predict(np.zeros((20_000, 3 * H + 2), np.float32))
    assert abs(draws.mean() - 0.75) < 0.015  # 5 standard errors
    with _raises(ValueError, "'slate_size' must be an integer >= 1 (got 0)"):
        ScoreActor(model, slate_size=0)


def test_score_actor_masks_history_items_as_the_sb3_policy_does() -> None:
    """With the SB3 policy's masks the actor never picks an item the observed history rules
    out (clicked, with mask_consumed; skipped twice and never clicked, with mask_rejected = 2),
    even where it scores highest; without them it acts on the raw scores."""
    model = _model()
    obs = np.zeros((2, 3 * H + 2), dtype=np.float32)
    obs[:, 2 * H : 3 * H] = 1.0  # every impression real
    obs[:, -1] = obs[:, -2] = 0.0
    obs[:, :H] = [5, 9, 5, 11, 9, 11]  # 5 skipped twice; 9 skipped then clicked; 11 clicked twice
    obs[:, H : 2 * H] = [0, 0, 0, 1, 1, 1]
    with torch.inference_mode():
        raw = model(torch.as_tensor(obs)).scores.numpy()
    floor = np.finfo(np.float32).min
    both = ScoreActor(model, mask_consumed=True, mask_rejected=2).scores(obs)
    assert (both[:, [5, 9, 11]] == floor).all()
    others = np.setdiff1d(np.arange(N), [5, 9, 11])
    np.testing.assert_array_equal(both[:, others], raw[:, others])
    rejected = ScoreActor(model, mask_rejected=2).scores(obs)
    assert (rejected[:, 5] == floor).all() and (rejected[:, [9, 11]] == raw[:, [9, 11]]).all()
    np.testing.assert_array_equal(ScoreActor(model).scores(obs), raw)
    with torch.no_grad():  # greedy never picks a masked item, however high it scores
        model.item_prior[5] += 1e3  # type: ignore[index]
    assert (ScoreActor(model).predict(obs, deterministic=True)[0] == 5).all()
    greedy, _ = ScoreActor(model, mask_rejected=2).predict(obs, deterministic=True)
    assert (greedy != 5).all()
    with _raises(ValueError, "'mask_rejected' must be an integer >= 0 (got -1)"):
        ScoreActor(model, mask_rejected=-1)
    with _raises(TypeError, "'mask_consumed' must be a bool (got 1)"):
        ScoreActor(model, mask_consumed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("content_match", [True, False])
def test_attention_fn_follows_the_runs_choice(content_match: bool) -> None:
    """ScoreActor.attention_fn shows the content-match weights when there is a content match,
    else the encoder's attention (as the runs record it), for full and compressed models alike."""
    model = _model(content_match=content_match)
    x = _obs(np.random.default_rng(8), 4).numpy()
    for module in (model, compress_recommender(model, "int8")):
        fn = ScoreActor(module).attention_fn
        expected = module.match_attention if content_match else module.history_attention
        with torch.inference_mode():
            np.testing.assert_allclose(fn(x[2]), expected(torch.as_tensor(x[2:3]))[0].numpy())
        assert fn.source == (
            "content-match weight"
            if content_match
            else "encoder attention (last layer, mean over heads)"
        )
    with _raises(ValueError, "match_attention needs content_match=True"):
        fold_recommender(_model(content_match=False)).match_attention(torch.as_tensor(x))


def test_distillation_fits_a_smaller_student() -> None:
    """The student is smaller, its KL to the teacher falls, and it folds and quantises."""
    teacher = _model(embed_dim=16, ff_dim=32)
    obs = _obs(np.random.default_rng(6), 256).numpy()
    cfg = DistilConfig(embed_dim=8, num_heads=1, ff_dim=8, match_dim=4, epochs=15, batch_size=64)
    student, losses = distil_recommender(teacher, obs, cfg)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(student) < count(teacher)
    assert student.config.embed_dim == 8 and student.match_table.shape[1] == 4
    assert losses[-1] < 0.7 * losses[0]
    again, losses2 = distil_recommender(teacher, obs, cfg)
    assert losses2 == losses  # seeded
    q = compress_recommender(teacher, "distil", observations=obs, distil=cfg)
    assert isinstance(q, CompressedRecommender) and q.quantized and q.config.embed_dim == 8


def test_distil_config_and_input_errors() -> None:
    """Bad student shapes and observations name the field and the value."""
    with _raises(ValueError, "'embed_dim' must be an integer >= 1 (got 0)"):
        DistilConfig(embed_dim=0)
    with _raises(ValueError, "'embed_dim' (6) must be divisible by 'num_heads' (4)"):
        DistilConfig(embed_dim=6, num_heads=4)
    with _raises(ValueError, "'learning_rate' must be in (0, 1] (got 0)"):
        DistilConfig(learning_rate=0)
    msg = (
        f"'observations' must have shape (num_obs >= 1, {3 * H + 2}) for the teacher's "
        f"history_len={H} (got (3, 5))"
    )
    with _raises(ValueError, msg):
        distil_recommender(_model(), np.zeros((3, 5), np.float32))
