"""Tests for driftrec.agents.attention (the attention recommender)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from driftrec.agents.attention import (
    AttentionConfig,
    AttentionRecommender,
    RecommenderOutput,
    parse_observation,
)
from driftrec.envs.observation import ObservationLayout, encode_clock

torch.set_num_threads(1)

H = 4  # history length of the tiny config
N = 10  # catalog size of the tiny config
E = 8  # text-embedding width of the tiny config
TINY = AttentionConfig(embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, history_len=H)


def _items(n: int = N, e: int = E, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, e)).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _obs(
    histories: list[list[tuple[int, float]]],
    h: int = H,
    clock: float = 100.0,
    left_pad: bool = True,
) -> torch.Tensor:
    """Flat observations from (item, feedback) histories, oldest first."""
    lay = ObservationLayout(history_len=h, num_items=N)
    obs = np.zeros((len(histories), lay.size), dtype=np.float32)
    for row, hist in enumerate(histories):
        start = h - len(hist) if left_pad else 0
        for k, (item, fb) in enumerate(hist):
            obs[row, lay.item_ids.start + start + k] = item
            obs[row, lay.feedback.start + start + k] = fb
            obs[row, lay.mask.start + start + k] = 1.0
        obs[row, lay.progress] = 0.5
        obs[row, lay.clock] = encode_clock(clock)
    return torch.from_numpy(obs)


def _random_obs(h: int, rows: int, seed: int) -> torch.Tensor:
    """Random histories of length ``h`` with padding anywhere; row 0 empty, row 1 full."""
    rng = np.random.default_rng(seed)
    lay = ObservationLayout(history_len=h, num_items=N)
    obs = np.zeros((rows, lay.size), dtype=np.float32)
    obs[:, lay.item_ids] = rng.integers(0, N, (rows, h))
    obs[:, lay.feedback] = rng.random((rows, h)) < 0.5
    obs[:, lay.mask] = rng.random((rows, h)) < 0.7
    obs[0, lay.mask] = 0.0
    obs[1, lay.mask] = 1.0
    return torch.from_numpy(obs)


def _model(config: AttentionConfig = TINY, seed: int = 0, **kwargs: object) -> AttentionRecommender:
    torch.manual_seed(seed)
    return AttentionRecommender(config, _items(), **kwargs)  # type: ignore[arg-type]


HISTORIES = [[(1, 1.0), (2, 0.0), (3, 0.0), (4, 1.0)], [(5, 0.0)], [(7, 1.0), (9, 0.0)]]


# --------------------------------------------------------------------------------------------
def test_config_validation_messages() -> None:
    """Invalid configs raise ValueError naming the field and the offending numbers."""
    with pytest.raises(ValueError, match=r"'embed_dim' \(10\).*'num_heads' \(4\)"):
        AttentionConfig(embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match=r"'num_layers' must be an integer >= 1 \(got 0\)"):
        AttentionConfig(num_layers=0)
    with pytest.raises(ValueError, match="'dropout'"):
        AttentionConfig(dropout=1.0)
    with pytest.raises(ValueError, match="'score_temperature'"):
        AttentionConfig(score_temperature=0.0)
    assert AttentionConfig().obs_size == 62 and AttentionConfig().head_dim == 16


def test_output_shapes() -> None:
    """forward gives (B, N) scores, a (B, d) user state and per-layer (B, heads, T, T) weights."""
    cfg = AttentionConfig(embed_dim=8, num_heads=2, num_layers=2, ff_dim=16, history_len=H)
    model = _model(cfg)
    out = model(_obs(HISTORIES), output_attentions=True)
    assert isinstance(out, RecommenderOutput)
    assert out.scores.shape == (3, N) and out.user_state.shape == (3, 8)
    assert out.attentions is not None and len(out.attentions) == 2
    assert all(a.shape == (3, 2, H + 1, H + 1) for a in out.attentions)
    assert model(_obs(HISTORIES)).attentions is None
    assert model.item_vectors().shape == (N, 8)
    torch.testing.assert_close(model.user_vectors(_obs(HISTORIES)), out.user_state)


def test_exact_parameter_count() -> None:
    """The tiny config has exactly 723 parameters (803 with id embeddings)."""
    # d=8, E=8, H=4, heads=2, ff=16, 1 layer:
    #   item_proj E*d = 64 (no bias); feedback_proj d + d = 16; start token 8 (no position
    #   embeddings: order comes from the relative recency bias only)
    #   layer: ln 2d = 16; qkv 3d*d + 3d = 216; out d*d + d = 72; recency slopes 2; ln 16;
    #          mlp d*ff + ff + ff*d + d = 280  -> 602
    #   final LayerNorm 2d = 16
    #   scores: item prior N = 10; content match gamma, lambda, w = 3, its dynamic attention's
    #   short-term decay and kappa 2; beta 1; click offset 1
    #   total 64 + 16 + 8 + 602 + 16 + 10 + 3 + 2 + 1 + 1 = 723;
    #   id embeddings add N*d = 80 -> 803
    count = sum(p.numel() for p in _model().parameters())
    assert count == 723
    hybrid = _model(dataclasses.replace(TINY, use_id_embeddings=True))
    assert sum(p.numel() for p in hybrid.parameters()) == 803
    no_bias = _model(dataclasses.replace(TINY, recency_bias=False))
    assert sum(p.numel() for p in no_bias.parameters()) == 721
    plain = _model(dataclasses.replace(TINY, item_bias=False, content_match=False))
    assert sum(p.numel() for p in plain.parameters()) == 708


def test_item_table_is_not_in_state_dict() -> None:
    """The frozen item table and release steps are non-persistent buffers."""
    model = _model(release_step=np.arange(N))
    keys = set(model.state_dict())
    assert "item_table" not in keys and "release_step" not in keys
    assert not any(p is model.item_table for p in model.parameters())


def test_unreleased_items_get_zero_probability() -> None:
    """Items released after the observation's clock get exactly zero softmax probability."""
    release = np.array([0, 0, 5, 5, 10, 10, 11, 50, 100, 101])
    model = _model(release_step=release)
    out = model(_obs(HISTORIES, clock=10.0))
    probs = out.scores.softmax(dim=-1)
    released = torch.from_numpy(release <= 10)
    assert torch.all(probs[:, ~released] == 0.0)
    assert torch.all(probs[:, released] > 0.0)
    assert torch.all(out.scores[:, ~released] == torch.finfo(out.scores.dtype).min)
    later = model(_obs(HISTORIES, clock=101.0)).scores.softmax(dim=-1)
    assert torch.all(later > 0.0)


def test_empty_history_is_finite() -> None:
    """An all-padding history gives finite scores, user state, attentions and gradients."""
    model = _model()
    out = model(_obs([[], [(3, 1.0)]]), output_attentions=True)
    assert torch.isfinite(out.scores).all() and torch.isfinite(out.user_state).all()
    assert out.attentions is not None
    user_row = out.attentions[0][0, :, 0]  # (heads, T): empty history -> all on itself
    torch.testing.assert_close(user_row[:, 0], torch.ones(2))
    out.scores.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_deterministic_with_fixed_seed() -> None:
    """The same seed gives the same weights and the same outputs."""
    a, b = _model(seed=3), _model(seed=3)
    obs = _obs(HISTORIES)
    torch.testing.assert_close(a(obs).scores, b(obs).scores, rtol=0, atol=0)
    assert not torch.equal(_model(seed=4)(obs).scores, a(obs).scores)


def test_attention_rows_sum_to_one_skip_padding_and_the_future() -> None:
    """Rows sum to 1; padding and later impressions (causal) get exactly zero weight."""
    cfg = AttentionConfig(embed_dim=8, num_heads=2, num_layers=2, ff_dim=16, history_len=H)
    out = _model(cfg)(_obs(HISTORIES), output_attentions=True)
    assert out.attentions is not None
    for weights in out.attentions:  # (B, heads, T, T) [query, key]
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
        # row 1 has one real impression, left-padded: keys 1..3 are padding
        assert torch.all(weights[1, :, :, 1:4] == 0.0)
        assert torch.all(weights[1, :, 4, 4] > 0.0) and torch.all(weights[1, :, 4, 0] > 0.0)
        # row 0 has four impressions: the state after impression 2 never sees 3 or 4
        assert torch.all(weights[0, :, 2, 3:] == 0.0) and torch.all(weights[0, :, 2, :3] > 0.0)


def test_recency_bias_changes_attention() -> None:
    """A steeper learned recency slope moves the query's attention to recent events."""
    model = _model()
    obs = _obs(HISTORIES[:1])
    slope = model.layers[0].attn.recency_slope
    with torch.no_grad():
        slope.fill_(-30.0)  # softplus ~ 1e-13: no recency preference
    flat = model(obs, output_attentions=True).attentions[0][0, :, 4]  # (heads, T) query row
    with torch.no_grad():
        slope.fill_(float(np.log(np.expm1(2.0))))  # softplus = 2 per position
    steep = model(obs, output_attentions=True).attentions[0][0, :, 4]  # (heads, T)
    # the query is the newest impression's token (4); keys: 0 = start, 1 = oldest ... 4
    torch.testing.assert_close(
        model.history_attention(obs)[0], steep.mean(dim=0)[1:], rtol=1e-6, atol=1e-7
    )
    assert torch.all(flat[:, 1] > 0.1)  # near-uniform over the 5 keys
    assert torch.all(steep[:, 1] < 0.01)
    assert torch.all(steep[:, 4] > steep[:, 3]) and torch.all(steep[:, 3] > steep[:, 2])
    off = dataclasses.replace(TINY, recency_bias=False)
    assert _model(off).layers[0].attn.recency_slope is None


def test_padding_placement_does_not_matter() -> None:
    """Left- or right-padded histories with the same impressions give the same user state."""
    model = _model()
    left = model(_obs(HISTORIES, left_pad=True)).user_state
    right = model(_obs(HISTORIES, left_pad=False)).user_state
    torch.testing.assert_close(left, right, rtol=1e-5, atol=1e-6)


def test_dict_observation_matches_flat() -> None:
    """The dict observation variant gives the same scores as the flat one."""
    model = _model()
    flat = _obs(HISTORIES)
    lay = ObservationLayout(history_len=H, num_items=N)
    as_dict = {k: torch.from_numpy(v) for k, v in lay.to_dict(flat.numpy()).items()}
    torch.testing.assert_close(model(as_dict).scores, model(flat).scores)
    parsed = parse_observation(flat, H)
    assert parsed.item_ids.dtype == torch.long and parsed.mask.dtype == torch.bool


def test_bad_observations_raise() -> None:
    """A wrong observation width or an out-of-catalog item id raises ValueError."""
    model = _model()
    with pytest.raises(ValueError, match=r"\(batch, 14\)"):
        model(torch.zeros(2, 15))
    bad = _obs([[(N, 1.0)]])
    with pytest.raises(ValueError, match="item ids"):
        model(bad)


def test_gradient_reaches_projection_and_all_parameters() -> None:
    """A loss on the scores sends finite, non-zero gradients to the projection and every weight."""
    model = _model(dataclasses.replace(TINY, use_id_embeddings=True))
    out = model(_obs(HISTORIES))
    loss = torch.nn.functional.cross_entropy(out.scores, torch.tensor([1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        if name == "click_offset":  # only the click loss uses it (tested below)
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert model.item_proj.weight.grad.abs().sum() > 0
    assert model.id_embedding.weight.grad.abs().sum() > 0  # zero-initialised, still learns
    assert model.layers[0].attn.recency_slope.grad.abs().sum() > 0


def test_inference_cache_tracks_parameter_updates() -> None:
    """The cached item tables in no-grad mode are refreshed after an optimizer step, and after
    an in-place change of the prior alone."""
    model = _model()
    obs = _obs(HISTORIES)
    with torch.no_grad():
        before = model(obs).scores
        assert model.item_vectors() is model.item_vectors()  # cached
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(obs).scores.logsumexp(-1).sum().backward()
    opt.step()
    with torch.no_grad():
        after = model(obs).scores
    torch.testing.assert_close(after, model(obs).scores.detach())
    assert not torch.allclose(before, after)
    with torch.no_grad():  # the prior alone changes: the cached item side follows it too
        model.item_prior.add_(torch.linspace(-1.0, 1.0, N))
        moved = model(obs).scores
    assert not torch.allclose(moved, after)
    torch.testing.assert_close(moved, model(obs).scores.detach())


def test_set_item_table_swaps_catalog() -> None:
    """set_item_table swaps the catalog (any N without per-item parameters; fixed N with them)."""
    model = _model(dataclasses.replace(TINY, item_bias=False))
    obs = _obs(HISTORIES)
    restored = _model(dataclasses.replace(TINY, item_bias=False), seed=9)
    restored.load_state_dict(model.state_dict())
    torch.testing.assert_close(restored(obs).scores, model(obs).scores)
    bigger = _items(n=25, seed=1)
    model.set_item_table(bigger, np.full(25, 200))
    out = model(obs)
    assert out.scores.shape == (3, 25)
    assert torch.all(out.scores == torch.finfo(out.scores.dtype).min)  # nothing released yet
    with pytest.raises(ValueError, match="width 8"):
        model.set_item_table(_items(e=4))
    with pytest.raises(ValueError, match=r"^with item_bias=True the catalog size is fixed at 10 "):
        _model().set_item_table(bigger)
    hybrid = _model(dataclasses.replace(TINY, use_id_embeddings=True, item_bias=False))
    with pytest.raises(ValueError, match=r"fixed at 10 items \(got 25\)"):
        hybrid.set_item_table(bigger)
    with pytest.raises(ValueError, match="release_step"):
        hybrid.set_item_table(_items(), np.arange(3))


def test_hundred_thousand_items() -> None:
    """A 100,000-item catalog is scored for a batch of 4 in one pass."""
    n = 100_000
    rng = np.random.default_rng(0)
    table = rng.standard_normal((n, 32), dtype=np.float32)
    release = np.arange(n)
    torch.manual_seed(0)
    model = AttentionRecommender(AttentionConfig(history_len=20), table, release)
    lay = ObservationLayout(history_len=20, num_items=n)
    obs = np.zeros((4, lay.size), dtype=np.float32)
    obs[:, lay.item_ids] = rng.integers(0, 50_000, size=(4, 20))
    obs[:, lay.mask] = 1.0
    obs[:, lay.clock] = encode_clock(60_000)
    with torch.no_grad():
        out = model(torch.from_numpy(obs))
    assert out.scores.shape == (4, n)
    probs = out.scores.softmax(-1)
    assert torch.all(probs[:, 60_001:] == 0.0) and torch.all(probs[:, :60_001] > 0.0)
    assert copy.deepcopy(model).num_items == n


# --------------------------------------------------------------------------------------------
# the click score: prior + content match + personal term, and the click loss
# --------------------------------------------------------------------------------------------
def test_scores_are_beta_times_click_scores() -> None:
    """Policy scores = beta * (b_i + w m_i + <u, v_i>/sqrt(d)); beta starts at 1/temperature."""
    model = _model(dataclasses.replace(TINY, score_temperature=0.25))
    torch.testing.assert_close(model.score_scale(), torch.tensor(4.0))
    with torch.no_grad():
        model.item_prior.copy_(torch.arange(N, dtype=torch.float32) / 10)
        obs = _obs(HISTORIES)
        scores = model(obs).scores  # (3, N)
        items = torch.arange(N).repeat(3)  # every (row, item) pair
        logits = model.click_logits(obs.repeat_interleave(N, dim=0), items).view(3, N)
    torch.testing.assert_close(scores, 4.0 * (logits - model.click_offset), rtol=1e-5, atol=1e-5)


def test_content_match_profile_by_hand() -> None:
    """The profile is sum gamma^r (y - lambda (1 - y)) e_a, normalised; match = cosine."""
    cfg = dataclasses.replace(TINY, match_decay=0.5, match_skip_weight=0.25, match_attention=False)
    model = _model(cfg)
    obs = _obs([[(1, 1.0), (2, 0.0), (3, 1.0)]])  # item 3 newest (r = 0), item 1 at r = 2
    e = model.match_table  # (N, E): E = 8 <= match_dim, so the unit rows themselves
    torch.testing.assert_close(e.norm(dim=1), torch.ones(N))
    h = 0.25 * e[1] - 0.5 * 0.25 * e[2] + 1.0 * e[3]  # gamma^2 * 1, gamma^1 * (-lambda), gamma^0
    expected = e @ (h / h.norm())  # (N,)
    parsed = parse_observation(obs, H)
    with torch.no_grad():
        got = model._encode(parsed).query_profiles() @ model.match_table.T
    torch.testing.assert_close(got[0], expected, rtol=1e-5, atol=1e-5)
    assert model.match_parameters() == pytest.approx(
        {"decay": 0.5, "skip_weight": 0.25, "weight": 2.0}, rel=1e-6
    )


def test_dynamic_match_attention_by_hand() -> None:
    """With match_attention, impression k's weight is gamma^r s_k exp(kappa (a_k - 1)), a_k the
    agreement (+1 click, -1 skip) of e_k with the short-term profile; match_attention() returns
    the query's |weights| normalised over the history."""
    cfg = dataclasses.replace(
        TINY, match_decay=0.5, match_skip_weight=0.25, match_query_decay=0.2, match_sharpness=3.0
    )
    model = _model(cfg)
    e = model.match_table  # (N, E) unit rows
    hist = [(1, 1.0), (2, 0.0), (3, 1.0)]  # item 3 newest
    q = 0.2**2 * e[1] - 0.2 * 0.25 * e[2] + e[3]
    q = q / q.norm()
    agree = torch.stack([e[1] @ q, -(e[2] @ q), e[3] @ q])  # click +1, skip -1
    w = torch.tensor([0.25, -0.5 * 0.25, 1.0]) * torch.exp(3.0 * (agree - 1.0))
    h = w @ e[[1, 2, 3]]
    expected = e @ (h / h.norm())
    with torch.no_grad():
        got = model._encode(parse_observation(_obs([hist]), H)).query_profiles() @ e.T
        weights = model.match_attention(_obs([hist, [], [(5, 1.0)]]))
    torch.testing.assert_close(got[0], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights[0, 1:], w.abs() / w.abs().sum())
    assert float(weights[0, 0]) == 0.0  # padding
    assert weights[1].tolist() == [0.0] * H  # an empty history
    assert weights[2].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_dynamic_match_attention_moves_to_a_change_of_taste() -> None:
    """Old clicks on one item, then clicks on an unrelated one: the dynamic weights put more on
    the recent clicks than the fixed recency decay does, and are the decay's without it."""
    e = _model().match_table
    far = int((e @ e[0]).argmin())  # the item least like item 0
    hist = [(0, 1.0), (0, 1.0), (far, 1.0), (far, 1.0)]  # a change of taste, newest last
    fixed = _model(dataclasses.replace(TINY, match_attention=False, match_decay=0.8))
    dynamic = _model(dataclasses.replace(TINY, match_decay=0.8, match_sharpness=5.0))
    with torch.no_grad():
        w_fixed = fixed.match_attention(_obs([hist]))[0]
        w_dyn = dynamic.match_attention(_obs([hist]))[0]
    decay = torch.tensor([0.8**3, 0.8**2, 0.8, 1.0])
    torch.testing.assert_close(w_fixed, decay / decay.sum())
    assert float(w_dyn[2:].sum()) > float(w_fixed[2:].sum()) + 0.2


def test_match_attention_needs_content_match() -> None:
    """Without the content-match term there is nothing to show: a clear error."""
    model = _model(dataclasses.replace(TINY, content_match=False))
    with pytest.raises(ValueError, match="match_attention needs content_match=True"):
        model.match_attention(_obs(HISTORIES))


def test_content_match_follows_the_history_without_training() -> None:
    """An untrained model ranks the clicked item's nearest neighbours first (no gradient step)."""
    model = _model(dataclasses.replace(TINY, embed_dim=8, match_weight=20.0))
    e = model.match_table
    with torch.no_grad():
        scores = model(_obs([[(4, 1.0), (4, 1.0)], [(6, 1.0), (6, 1.0)]])).scores
    for row, item in enumerate((4, 6)):
        assert int(scores[row].argmax()) == int((e @ e[item]).argmax()) == item


def test_click_loss_is_bce_of_the_newest_impression_given_the_rest() -> None:
    """num_targets=1: BCE(sigmoid(logit of the newest item given the older history), its click)."""
    model = _model()
    obs = _obs([[(1, 1.0), (2, 0.0), (4, 1.0)], [(5, 0.0), (7, 0.0)]])
    before = _obs([[(1, 1.0), (2, 0.0)], [(5, 0.0)]])  # the same without the newest impression
    logits = model.click_logits(before, torch.tensor([4, 7]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(model.click_loss(obs, num_targets=1), expected)
    # two targets: the newest given the rest, and the second newest given what came before it
    older = _obs([[(1, 1.0)], [], [(1, 1.0), (2, 0.0)], [(5, 0.0)]])
    second = model.click_logits(older[:2], torch.tensor([2, 5]))
    both = torch.cat([logits, second])
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(
        model.click_loss(obs, num_targets=2),
        torch.nn.functional.binary_cross_entropy_with_logits(both, labels),
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"num_layers": 2},
        {"match_attention": False, "zero_start_state": False},
        {"content_match": False, "recency_bias": False, "use_id_embeddings": True},
    ],
)
def test_query_row_equals_the_full_encoder(overrides: dict[str, object]) -> None:
    """forward and user_vectors compute the newest token's row only; their scores, user states
    and gradients equal the full encoder's (padding anywhere, empty histories included)."""
    h = 6
    cfg = dataclasses.replace(TINY, history_len=h, match_sharpness=2.0, **overrides)
    model = _model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = _random_obs(h, 16, seed=4)
    full = model(obs, output_attentions=True)  # every token's state
    fast = model(obs)  # the query row only
    assert fast.attentions is None and fast.encoding is None
    torch.testing.assert_close(fast.scores, full.scores, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.user_state, full.user_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        model.user_vectors(obs), model.user_vectors(obs, output_attentions=True)[0]
    )
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.linspace(-1, 1, N)
    for a, b in zip(
        torch.autograd.grad((fast.scores * weights).sum(), params, allow_unused=True),
        torch.autograd.grad((full.scores * weights).sum(), params, allow_unused=True),
        strict=True,
    ):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(model(obs).scores, fast.scores.detach())
    if cfg.zero_start_state:
        assert fast.user_state[0].abs().sum() == 0.0


@pytest.mark.parametrize("num_targets", [1, 3, 6, 7])
def test_click_loss_on_the_newest_rows_equals_the_masked_full_loss(num_targets: int) -> None:
    """A click loss on the k newest impressions, from an encoder pass over the k + 1 newest
    tokens only, equals the full pass's loss restricted to them, gradients included."""
    h = 6
    cfg = dataclasses.replace(TINY, history_len=h, num_layers=2, match_sharpness=2.0)
    model = _model(cfg)
    obs = _random_obs(h, 12, seed=7)
    params = [p for p in model.parameters() if p.requires_grad]
    full = model.click_loss(model(obs, output_encoding=True), num_targets=num_targets)
    rows = model.click_loss(
        model(obs, output_encoding=True, click_targets=num_targets), num_targets=num_targets
    )
    direct = model.click_loss(obs, num_targets=num_targets)  # the rows path too
    torch.testing.assert_close(rows, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(direct, full, rtol=1e-5, atol=1e-6)
    for a, b in zip(
        torch.autograd.grad(rows, params, allow_unused=True),
        torch.autograd.grad(full, params, allow_unused=True),
        strict=True,
    ):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("feedback", ["click", "engagement"])
def test_token_table_path_equals_the_per_token_encoder(
    monkeypatch: pytest.MonkeyPatch, feedback: str
) -> None:
    """With 0/1 feedback a one-layer encoder projects each distinct token once (a table of
    2N + 1: every item with and without a click, and the start); its scores, click loss and
    gradients equal the per-token encoder's. Other feedback (engagement values) and token
    dropout while training fall back to the per-token path."""
    h = 6
    cfg = dataclasses.replace(TINY, history_len=h, match_sharpness=2.0)
    model = _model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = _random_obs(h, 16, seed=5)
    lay = ObservationLayout(history_len=h, num_items=N)
    if feedback == "engagement":
        obs[2:, lay.feedback] *= 0.7  # click quality, not 0/1
    parsed = parse_observation(obs, h)
    ids = parsed.checked_item_ids(N)
    index = model._token_index(ids, parsed.feedback, parsed.mask, N)
    assert (index is None) == (feedback == "engagement")
    if index is not None:  # each token's table row is its own token
        table = model._token_table(model.item_vectors())
        torch.testing.assert_close(
            table[index], model._tokens(model.item_vectors()[ids], parsed.feedback)
        )
    params = [p for p in model.parameters() if p.requires_grad]

    def run() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]]:
        out = model(obs, output_encoding=True, click_targets=3)
        loss = model.click_loss(out, num_targets=3)
        total = loss + (out.scores.clamp_min(-1e4) * torch.linspace(-1, 1, N)).sum()
        return out.scores, loss, list(torch.autograd.grad(total, params, allow_unused=True))

    fast = run()
    with torch.no_grad():
        acting = model(obs).scores
    monkeypatch.setattr(AttentionRecommender, "_token_index", lambda *args: None)
    slow = run()
    with torch.no_grad():
        assert torch.equal(model(obs).scores, acting)
    assert torch.equal(fast[0], slow[0])
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-6, atol=1e-7)
    for a, b in zip(fast[2], slow[2], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    monkeypatch.undo()
    clicks = (parsed.feedback > 0).to(parsed.feedback.dtype)  # 0/1
    drop = _model(dataclasses.replace(cfg, dropout=0.1))
    assert drop.train()._token_index(ids, clicks, parsed.mask, N) is None
    assert drop.eval()._token_index(ids, clicks, parsed.mask, N) is not None


def test_click_loss_refuses_an_encoding_made_for_fewer_targets() -> None:
    """An encoder pass made for the 2 newest impressions cannot serve all of them: one clear
    error naming both."""
    model = _model()
    out = model(_obs(HISTORIES), output_encoding=True, click_targets=2)
    with pytest.raises(ValueError, match=r"serves the newest 2 impressions, not all"):
        model.click_loss(out)
    with pytest.raises(ValueError, match=r"serves the newest 2 impressions, not 3"):
        model.click_loss(out, num_targets=3)
    assert torch.isfinite(model.click_loss(out, num_targets=1))


def test_click_loss_is_the_mean_over_every_prefix_with_padding_anywhere() -> None:
    """The full click loss (every impression given the ones before it) equals the mean BCE of
    click_logits on each prefix, with padding between impressions ignored, and its gradient
    is the gradient of that mean (the dynamic match attention on, history 6)."""
    h = 6
    cfg = dataclasses.replace(TINY, history_len=h, match_sharpness=2.0)
    rng = np.random.default_rng(3)
    lay = ObservationLayout(history_len=h, num_items=N)
    rows = []
    for _ in range(5):
        obs = np.zeros(lay.size, dtype=np.float32)
        obs[lay.item_ids] = rng.integers(0, N, h)
        obs[lay.feedback] = rng.random(h) < 0.5
        obs[lay.mask] = rng.random(h) < 0.7
        rows.append(obs)
    rows[0][lay.mask] = 0.0  # an empty history
    obs = torch.from_numpy(np.stack(rows))
    logits, labels = [], []
    model = _model(cfg)
    for row in rows:
        real = [k for k in range(h) if row[lay.mask][k] > 0.5]
        for j, p in enumerate(real):  # impression p given the real impressions before it
            hist = [(int(row[lay.item_ids][k]), float(row[lay.feedback][k])) for k in real[:j]]
            target = torch.tensor([int(row[lay.item_ids][p])])
            logits.append(model.click_logits(_obs([hist], h=h), target))
            labels.append(float(row[lay.feedback][p]))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.cat(logits), torch.tensor(labels)
    )
    got = model.click_loss(obs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    params = [p for p in model.parameters() if p.requires_grad]
    g_got = torch.autograd.grad(got, params, allow_unused=True)
    g_exp = torch.autograd.grad(expected, params, allow_unused=True)
    for a, b in zip(g_got, g_exp, strict=True):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_click_loss_trains_every_score_parameter_and_learns_a_prior() -> None:
    """The click loss reaches the prior, offset, match weights; 200 steps fit item quality."""
    model = _model(dataclasses.replace(TINY, prior_residual=False))
    loss = model.click_loss(_obs(HISTORIES))
    loss.backward()
    for p in (model.item_prior, model.click_offset, model.match_weight_raw, model.item_proj.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # items 0-4 are always clicked, 5-9 never: the prior must separate them
    rng = np.random.default_rng(0)
    hist = [[(int(i), float(i < 5)) for i in rng.integers(0, N, 4)] for _ in range(64)]
    obs = _obs(hist)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        model.click_loss(obs, num_targets=4).backward()
        opt.step()
    prior = model.item_prior.detach()
    assert float(prior[:5].min()) > float(prior[5:].max())


def test_click_loss_empty_histories_is_zero() -> None:
    """Observations without impressions give a zero loss (and no NaN)."""
    model = _model()
    loss = model.click_loss(_obs([[], []]))
    assert float(loss.detach()) == 0.0


def test_click_loss_reuses_the_forward_pass() -> None:
    """click_loss(forward(obs, output_encoding=True)) equals click_loss(obs); all H targets."""
    model = _model()
    obs = _obs(HISTORIES)
    out = model(obs, output_encoding=True)
    torch.testing.assert_close(model.click_loss(out), model.click_loss(obs))
    with pytest.raises(ValueError, match="output_encoding=True"):
        model.click_loss(model(obs))
    # every impression of the three histories (4 + 1 + 2) is a target: the full loss averages
    # seven per-target terms, and num_targets=H gives the same
    torch.testing.assert_close(model.click_loss(obs), model.click_loss(obs, num_targets=H))


def test_residual_prior_is_orthogonal_to_the_text_directions() -> None:
    """With prior_residual the effective prior has no component along the reduced text table."""
    items = _items(n=40, e=8)
    torch.manual_seed(0)
    model = AttentionRecommender(dataclasses.replace(TINY, match_dim=4), items)
    with torch.no_grad():
        model.item_prior.normal_()
    prior = model.prior()
    basis = model.text_basis  # (40, 4): the 4 kept text directions
    assert basis.shape == (40, 4)
    torch.testing.assert_close(basis.T @ basis, torch.eye(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(basis.T @ prior, torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(model.match_table.T @ prior, torch.zeros(4), atol=1e-5, rtol=0)
    plain_cfg = dataclasses.replace(TINY, match_dim=4, prior_residual=False)
    plain = AttentionRecommender(plain_cfg, items)
    with torch.no_grad():
        plain.item_prior.copy_(model.item_prior)
    torch.testing.assert_close(plain.prior(), model.item_prior)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("match_decay", 1.0, "'match_decay' must be in (0, 1) (got 1.0)"),
        ("match_query_decay", 0.0, "'match_query_decay' must be in (0, 1) (got 0.0)"),
        ("match_sharpness", -1.0, "'match_sharpness' must be in (0, 100] (got -1.0)"),
        ("match_attention", 1, "'match_attention' must be a bool (got 1)"),
        ("match_skip_weight", 0.0, "'match_skip_weight' must be in (0, 100] (got 0.0)"),
        ("match_weight", 1e9, "'match_weight' must be in (0, 100] (got 1000000000.0)"),
        ("match_weight", float("nan"), "'match_weight' must be finite (got nan)"),
        ("match_dim", 0, "'match_dim' must be an integer >= 1 (got 0)"),
        ("prior_residual", "yes", "'prior_residual' must be a bool (got 'yes')"),
        ("zero_start_state", 1, "'zero_start_state' must be a bool (got 1)"),
    ],
)
def test_score_config_fields_are_validated(field: str, value: object, message: str) -> None:
    """Each new score option names itself, the value and what was expected."""
    import re

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AttentionConfig(**{field: value})  # type: ignore[arg-type]


# -------------------------------------------------------------------- long-horizon terms
LONG = dataclasses.replace(
    TINY, policy_tilt=True, carryover=True, carryover_decay=0.5, prior_residual=False
)


def test_policy_tilt_starts_as_the_plain_policy_and_moves_only_the_logits() -> None:
    """policy_tilt adds beta * ((rho - 1) b + tau + eta e / (1 - g)) to the logits; at
    initialisation that is 0 (the same scores as without it), and the click loss never sees it."""
    plain, tilted = _model(), _model(LONG)
    obs = _obs(HISTORIES)
    with torch.no_grad():
        torch.testing.assert_close(tilted(obs).scores, plain(obs).scores)
        tilted.item_prior.copy_(torch.linspace(-1.0, 1.0, N))
        tilted.prior_weight.fill_(-0.5)
        tilted.item_tilt.copy_(torch.arange(N, dtype=torch.float32) / 7)
        tilted.carry_effect.copy_(torch.linspace(0.3, -0.3, N))
        tilted.horizon_weight.fill_(0.25)  # it starts at carryover_horizon = 1
        base = tilted(obs).scores
        expected_tilt = (
            -1.5 * tilted.prior() + tilted.item_tilt + 0.25 * 2.0 * tilted.carry_effects()
        )  # rho - 1 = -1.5, 1 / (1 - g) = 2 with g = 0.5
        torch.testing.assert_close(tilted.policy_tilt(), expected_tilt)
        items = torch.arange(N).repeat(3)
        logits = tilted.click_logits(obs.repeat_interleave(N, dim=0), items).view(3, N)
        carry = tilted.carryover(obs).unsqueeze(1)  # (3, 1)
        click = logits - tilted.click_offset - carry
        torch.testing.assert_close(
            base, tilted.score_scale() * (click + expected_tilt), rtol=1e-5, atol=1e-5
        )
    loss = tilted.click_loss(obs)
    loss.backward()
    for p in (tilted.prior_weight, tilted.item_tilt, tilted.horizon_weight):
        assert p.grad is None  # policy-only: the click loss does not reach them
    assert tilted.carry_effect.grad is not None and tilted.carry_effect.grad.abs().sum() > 0
    tilted.zero_grad(set_to_none=True)
    (tilted.policy_tilt() * torch.arange(N)).sum().backward()  # it trains only rho, tau, eta
    for p in (tilted.prior_weight, tilted.item_tilt, tilted.horizon_weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    for p in (tilted.item_prior, tilted.carry_effect, tilted.carry_decay_logit):
        assert p.grad is None


def test_carryover_by_hand() -> None:
    """The carry-over at the query is sum over clicked k of g^r_k e_{a_k} (r_k = impressions
    after k); it enters the click logit of the next impression, and the click loss fits it."""
    cfg = dataclasses.replace(TINY, carryover=True, carryover_decay=0.5, prior_residual=False)
    torch.manual_seed(0)  # a text table without directions: the carry-over is e itself
    model = AttentionRecommender(cfg, np.zeros((N, E), dtype=np.float32))
    assert model.text_basis.shape[1] == 0
    with torch.no_grad():
        model.carry_effect.copy_(torch.arange(N, dtype=torch.float32) / 10)
    obs = _obs([[(1, 1.0), (2, 0.0), (3, 1.0)], [(4, 0.0)], []])
    # row 0: item 3 clicked (r = 0), item 2 skipped, item 1 clicked (r = 2): 0.3 + 0.25 * 0.1
    torch.testing.assert_close(model.carryover(obs), torch.tensor([0.325, 0.0, 0.0]))
    torch.manual_seed(0)
    plain = AttentionRecommender(
        dataclasses.replace(TINY, prior_residual=False), np.zeros((N, E), dtype=np.float32)
    )
    with torch.no_grad():
        shift = model.click_logits(obs, torch.tensor([5, 5, 5])) - plain.click_logits(
            obs, torch.tensor([5, 5, 5])
        )
        torch.testing.assert_close(shift, torch.tensor([0.325, 0.0, 0.0]))
        torch.testing.assert_close(model(obs).scores, plain(obs).scores)  # ranking unchanged
    # item 0 clicked always raises the next click; 200 steps must give it the largest effect
    rng = np.random.default_rng(0)
    hist = []
    for _ in range(128):
        first = int(rng.integers(0, N))
        hist.append([(first, 1.0), (int(rng.integers(0, N)), float(first == 0))])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        model.click_loss(_obs(hist), num_targets=1).backward()
        opt.step()
    assert int(model.carry_effect.argmax()) == 0


def test_residual_carryover_is_orthogonal_to_the_text_directions() -> None:
    """The carry-over per item has no component along the text basis (with or without
    prior_residual)."""
    model = _model(dataclasses.replace(TINY, carryover=True, prior_residual=False))
    with torch.no_grad():
        model.carry_effect.copy_(torch.randn(N))
        effects = model.carry_effects()
    assert float(effects.abs().max()) > 0.1
    torch.testing.assert_close(model.text_basis.T @ effects, torch.zeros(model.text_basis.shape[1]))


def test_long_horizon_config_validation() -> None:
    """carryover_decay must be in (0, 1); the flags must be bools; sizes are fixed by them."""
    with pytest.raises(ValueError, match=r"^'carryover_decay' must be in \(0, 1\) \(got 1.0\)$"):
        dataclasses.replace(TINY, carryover_decay=1.0)
    with pytest.raises(ValueError, match=r"^'policy_tilt' must be a bool \(got 1\)$"):
        dataclasses.replace(TINY, policy_tilt=1)
    model = _model(dataclasses.replace(TINY, policy_tilt=True, item_bias=False))
    msg = r"^with policy_tilt=True the catalog size is fixed at 10 items \(got 12\)$"
    with pytest.raises(ValueError, match=msg):
        model.set_item_table(_items(12))


@pytest.mark.parametrize("layers", [1, 2])
def test_carryover_is_the_same_from_the_newest_rows_only(layers: int) -> None:
    """The encoder pass that keeps only the newest rows (acting, a click loss with
    click_targets) gives the same carry-over, click loss and scores as the full pass."""
    cfg = dataclasses.replace(TINY, carryover=True, policy_tilt=True, num_layers=layers)
    model = _model(cfg).eval()
    with torch.no_grad():
        model.carry_effect.copy_(torch.randn(N, generator=torch.Generator().manual_seed(3)))
    obs = _obs([[(1, 1.0), (2, 0.0), (3, 1.0), (4, 1.0)], [(4, 0.0), (5, 1.0)], []])
    with torch.no_grad():
        full = model.click_loss(obs)
        part = model.click_loss(model(obs, output_encoding=True, click_targets=H), num_targets=H)
        torch.testing.assert_close(full, part)
        torch.testing.assert_close(model(obs).scores, model(obs, output_encoding=True).scores)
        carry = model.carryover(obs)
        assert bool((carry[:2] != 0).all()) and float(carry[2]) == 0.0  # empty history: none
        logits = model.click_logits(obs, torch.tensor([5, 5, 5]))
        plain = dataclasses.replace(cfg, carryover=False, policy_tilt=False)
        without = _model(plain).eval()
        without.load_state_dict(model.state_dict(), strict=False)
        torch.testing.assert_close(
            logits - without.click_logits(obs, torch.tensor([5, 5, 5])), carry
        )
