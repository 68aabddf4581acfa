"""LSFA adaptors, queues, token cache and the training loop on small generated token sets."""

import json

import numpy as np
import pytest
import torch

from core.adaptation import AdaptConfig, AdaptorSet, TokenCache, apply_adaptors, train_adaptors
from core.adaptation.adaptors import ModalityAdaptor, adaptors_from_state, adaptors_state, build_adaptor
from core.adaptation.queues import ClassQueues, FeatureQueue
from core.adaptation.trainer import _forward, _token_masks
from core.errors import DataError, UserError
from core.progress import Cancelled, Progress

GRID = 8  # 64 tokens per image


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls on the shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_config(**kw) -> AdaptConfig:
    base = dict(width_rgb=16, width_xyz=8, num_heads=2, head_dim=16, batch_size=4, epochs=2,
                queue_patch_cap=256, queue_min_images=2, queue_warmup_steps=1, la_max_tokens=128,
                min_steps=0)
    base.update(kw)
    return AdaptConfig(**base)


def make_cache(n=12, c_rgb=12, c_xyz=6, seed=0, rgb=True, xyz=True, classes=1) -> TokenCache:
    """Tokens generated from a shared per-token latent, so RGB and xyz tokens at the same cell
    are related (something to align); cells outside a disc are background (xyz = 0)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(4, c_rgb, generator=g)
    b = torch.randn(4, c_xyz, generator=g)
    yy, xx = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
    fg = ((yy - 3.5) ** 2 + (xx - 3.5) ** 2 < 10).reshape(-1)
    cache = TokenCache()
    for i in range(n):
        z = torch.randn(GRID * GRID, 4, generator=g)
        r = z @ a + 0.1 * torch.randn(GRID * GRID, c_rgb, generator=g)
        p = 5.0 + z @ b + 0.1 * torch.randn(GRID * GRID, c_xyz, generator=g)
        p[~fg] = 0
        cache.add(r if rgb else None, p if xyz else None, fg if rgb and not xyz else None, i % classes, f"s{i}")
    return cache


# ---------------------------------------------------------------------------------- queues


def test_feature_queue_trims_oldest_rows():
    q = FeatureQueue(cap=5)
    assert len(q) == 0 and q.tensor().numel() == 0
    q.push(torch.arange(3.0).reshape(3, 1))
    q.push(torch.arange(3.0, 7.0).reshape(4, 1))
    assert len(q) == 5
    assert q.ordered().flatten().tolist() == [2, 3, 4, 5, 6]
    assert sorted(q.tensor().flatten().tolist()) == [2, 3, 4, 5, 6]
    q.push(torch.tensor([[7.0]]))
    assert q.ordered().flatten().tolist() == [3, 4, 5, 6, 7]
    q.push(torch.arange(10.0, 17.0).reshape(7, 1))  # more than the cap at once
    assert q.ordered().flatten().tolist() == [12, 13, 14, 15, 16]
    with pytest.raises(ValueError):
        q.push(torch.zeros(1, 2))


def test_queue_copies_and_detaches():
    x = torch.ones(2, 3, requires_grad=True)
    q = FeatureQueue(4)
    q.push(x * 2)
    assert not q.tensor().requires_grad
    x.data.fill_(5)
    assert q.tensor().eq(2).all()


def test_queue_bank_excludes_an_images_own_rows():
    cq = ClassQueues(patch_cap=4, global_cap=2, min_images=1)
    cq.push(0, "xyz_patch", torch.zeros(2, 1), source=7)
    cq.push(0, "xyz_patch", torch.ones(3, 1), source=8)  # trims one row of image 7
    assert cq.bank(0, "xyz_patch").flatten().tolist() == [1.0, 0.0, 1.0, 1.0]  # ring storage order
    assert cq.bank(0, "xyz_patch", exclude_source=7).flatten().tolist() == [1.0, 1.0, 1.0]
    assert cq.bank(0, "xyz_patch", exclude_source=8).flatten().tolist() == [0.0]
    cq.push(0, "xyz_patch", torch.ones(4, 1), source=8)
    assert cq.bank(0, "xyz_patch", exclude_source=8) is None


def test_class_queues_ready_per_class():
    cq = ClassQueues(patch_cap=10, global_cap=2, min_images=2)
    assert cq.bank(0, "rgb_patch") is None and not cq.ready(0)
    for i in range(3):
        cq.push(0, "rgb_patch", torch.full((4, 2), float(i)))
        cq.push(0, "rgb_global", torch.full((1, 2), float(i)))
        cq.count_images(0)
    assert cq.ready(0) and not cq.ready(1)
    assert cq.bank(0, "rgb_patch").shape == (10, 2)
    assert sorted(cq.bank(0, "rgb_global")[:, 0].tolist()) == [1.0, 2.0]  # global cap 2


# ---------------------------------------------------------------------------------- adaptors


@pytest.mark.parametrize("kind", ["block", "mlp"])
def test_adaptor_shapes_and_identity_at_init(kind):
    cfg = small_config(adaptor=kind)
    for modality, dim in (("rgb", 12), ("xyz", 6)):
        ad = build_adaptor(modality, dim, cfg)
        ad.set_stats(torch.full((dim,), 0.5), torch.full((dim,), 2.0))
        x = torch.randn(3, 64, dim)
        key = torch.rand(3, 64) > 0.3
        out = ad(x, key)
        assert out.shape == x.shape
        assert torch.equal(out, x)  # zero-initialised Up: exactly the frozen features
    n_block = sum(p.numel() for p in build_adaptor("rgb", 152, AdaptConfig(adaptor="block")).parameters())
    n_mlp = sum(p.numel() for p in build_adaptor("rgb", 152, AdaptConfig(adaptor="mlp")).parameters())
    assert n_block > n_mlp > 0


def test_xyz_adaptor_keeps_empty_cells_empty():
    ad = build_adaptor("xyz", 6, small_config())
    torch.nn.init.normal_(ad.up.weight)
    torch.nn.init.normal_(ad.up.bias)
    x = torch.randn(2, 64, 6)
    x[:, :10] = 0
    out = ad(x)
    assert torch.equal(out[:, :10], torch.zeros(2, 10, 6))
    assert not torch.allclose(out[:, 10:], x[:, 10:])


def test_packed_foreground_forward_equals_full_forward():
    """Training computes only foreground tokens; scoring computes all. Same outputs on fg."""
    cache = make_cache(n=4)
    cfg = small_config()
    masks = _token_masks(cache, cfg)
    for m in ("rgb", "xyz"):
        ad = build_adaptor(m, cache.dim(m), cfg)
        torch.nn.init.normal_(ad.up.weight, std=0.5)
        x16 = cache.stack(m)
        bmask = {k: v for k, v in masks.items()}
        packed, omask = _forward(ad, x16, bmask, m, cfg)
        full = ad(x16.float(), masks[f"attn_{m}"])
        assert torch.allclose(packed[omask[m]], full[masks[m]], atol=1e-5)


def test_attention_mixes_tokens_only_in_block():
    x = torch.randn(1, 64, 12)
    x2 = x.clone()
    x2[0, 5] += 3.0  # change one token
    for kind, mixes in (("block", True), ("mlp", False)):
        ad = build_adaptor("rgb", 12, small_config(adaptor=kind))
        torch.nn.init.normal_(ad.up.weight, std=0.5)
        d = (ad(x2) - ad(x)).abs().sum(-1)[0]
        assert (d[torch.arange(64) != 5].max() > 1e-6) == mixes


# ---------------------------------------------------------------------------------- cache/config


def test_token_cache_layouts_and_roundtrip(tmp_path):
    cache = TokenCache()
    grid_rgb = np.random.default_rng(0).normal(size=(12, GRID, GRID)).astype(np.float32)
    cache.add(grid_rgb, None, np.ones((GRID, GRID), bool), 3, "a")  # (C, g, g) layout
    assert cache[0].rgb.shape == (64, 12) and cache[0].rgb.dtype == torch.float16
    assert torch.allclose(cache[0].rgb[9].float(), torch.from_numpy(grid_rgb[:, 1, 1]), atol=1e-2)
    with pytest.raises(ValueError):
        cache.add(None, torch.zeros(64, 3))  # modality mismatch
    full = make_cache(n=3)
    path = tmp_path / "tokens.safetensors"
    full.save(path)
    back = TokenCache.load(path)
    assert len(back) == 3 and back.modalities == ("rgb", "xyz")
    assert torch.equal(back.stack("xyz"), full.stack("xyz")) and torch.equal(back.stack("fg"), full.stack("fg"))
    assert [it.name for it in back] == ["s0", "s1", "s2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.safetensors"]  # no temp file left
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="bad.safetensors"):
        TokenCache.load(bad)


def test_config_json_roundtrip_and_validation():
    cfg = AdaptConfig(adaptor="mlp", losses=("la", "lc"), tau=0.1)
    back = AdaptConfig.from_json(cfg.to_json())
    assert back == cfg and json.loads(cfg.to_json())["losses"] == ["la", "lc"]
    with pytest.raises(UserError):
        AdaptConfig(losses=("la", "xx"))
    with pytest.raises(UserError):
        AdaptConfig.from_dict({"bogus": 1})
    with pytest.raises(UserError):
        AdaptConfig(width_rgb=30, num_heads=4)


# ---------------------------------------------------------------------------------- training


def test_seeded_training_is_reproducible():
    cache = make_cache()
    r1 = train_adaptors(cache, small_config(seed=5))
    r2 = train_adaptors(cache, small_config(seed=5))
    r3 = train_adaptors(cache, small_config(seed=6))
    assert r1.state.keys() == r2.state.keys() and r1.modalities == ("rgb", "xyz")
    assert all(torch.equal(r1.state[k], r2.state[k]) for k in r1.state)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in r1.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in r2.history]
    assert any(not torch.equal(r1.state[k], r3.state[k]) for k in r1.state)
    # all four losses ran once the queues were ready, and the weights moved away from identity
    assert {"la", "ga", "lc", "gc"} <= set(r1.history[-1])
    assert r1.state["rgb.up.weight"].abs().max() > 0
    json.dumps(r1.summary())


def test_global_rng_state_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_adaptors(make_cache(n=4), small_config(epochs=1))
    assert torch.equal(torch.rand(3), expected)


def test_cancelled_run_raises_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    events = []

    def on_event(ev):
        events.append(ev)
        if ev.done == 3:
            progress.cancel()

    progress = Progress(on_event)
    with pytest.raises(Cancelled):
        train_adaptors(make_cache(), small_config(), progress)
    assert list(tmp_path.iterdir()) == []
    assert max(e.done for e in events) == 3 and events[-1].stage == "Adapting features"
    assert events[-1].total == 6 and "loss" in events[-1].message


def test_local_alignment_loss_decreases():
    cache = make_cache(n=16)
    cfg = small_config(losses=("la",), epochs=12, lr=3e-3, batch_size=8)
    res = train_adaptors(cache, cfg)
    la = [h["la"] for h in res.history]
    assert len(la) == 24
    assert np.mean(la[-4:]) < np.mean(la[:4]) - 0.5


def test_gradient_accumulation_steps():
    res = train_adaptors(make_cache(n=12), small_config(batch_size=2, grad_accum=4, epochs=1))
    stepped = [h["step"] for h in res.history if "lr" in h]
    assert len(res.history) == 6 and stepped == [4, 6]  # every 4th micro-batch + the last one


def test_small_training_sets_get_min_steps():
    res = train_adaptors(make_cache(n=8), small_config(epochs=1, min_steps=7, losses=("la",)))
    assert len(res.history) == 8 and res.history[-1]["epoch"] == 4  # 2 micro-batches per epoch
    assert any("4 epochs instead of 1" in n for n in res.notes)
    assert small_config(epochs=1, min_steps=7).epochs_for(8) == 4  # the rule the trainer ran


def test_epochs_for_states_the_min_steps_rule():
    """What the fit dialog shows: 4 epochs asked, 44 images in batches of 8 (6 per epoch) run
    ceil(200 / 6) = 34 epochs; large sets and explicit epochs (min_steps 0) run as asked."""
    cfg = AdaptConfig()
    assert (cfg.epochs, cfg.min_steps, cfg.batch_size) == (4, 200, 8)
    assert cfg.epochs_for(44) == 34
    assert cfg.epochs_for(1000) == 4
    assert AdaptConfig.from_dict({"epochs": 4}).epochs_for(44) == 4
    assert AdaptConfig(epochs=0).epochs_for(44) == 0


def test_multi_category_uses_per_class_queues():
    res = train_adaptors(make_cache(n=12, classes=3), small_config(epochs=3))
    # a class is ready after 2 of its images were pushed; per-class compactness then runs
    assert any("lc" in h for h in res.history)


def test_single_modality_keeps_intra_modal_terms_only():
    cache = make_cache(xyz=False)
    res = train_adaptors(cache, small_config())
    assert res.modalities == ("rgb",) and res.losses == ("lc", "gc")
    assert any("cross-modal losses la,ga" in n for n in res.notes)
    assert any("collapse" in n for n in res.notes)
    assert all(k.startswith("rgb.") for k in res.state)


def test_cross_modal_only_with_one_modality_skips_adaptation():
    cache = make_cache(rgb=False)
    res = train_adaptors(cache, small_config(losses=("la", "ga")))
    assert not res.adapted and res.history == []
    assert any("skipped" in n for n in res.notes)
    tokens = cache.stack("xyz")[:2].float()
    rgb_out, xyz_out = apply_adaptors(res.state, res.config, None, tokens)
    assert rgb_out is None and torch.equal(xyz_out, tokens)


def test_apply_adaptors_layouts_and_state_roundtrip():
    cache = make_cache(n=8)
    res = train_adaptors(cache, small_config(epochs=1, lr=3e-3))
    assert all(isinstance(v, torch.Tensor) for v in res.state.values())
    rgb = cache.stack("rgb")[:3].float()
    xyz = cache.stack("xyz")[:3].float()
    fg = cache.stack("fg")[:3]
    a_rgb, a_xyz = apply_adaptors(res.state, res.config, rgb, xyz, fg, batch_size=2)
    assert a_rgb.shape == rgb.shape and a_xyz.shape == xyz.shape
    assert not torch.allclose(a_rgb, rgb)
    assert torch.equal(a_xyz[:, ~fg[0]], xyz[:, ~fg[0]])  # empty xyz cells stay 0
    # (T, C) and (B, C, g, g) layouts give the same numbers
    single, _ = apply_adaptors(res.state, res.config, rgb[1], None, fg[1])
    assert torch.allclose(single, a_rgb[1], atol=1e-5)
    grid = rgb.transpose(1, 2).reshape(3, -1, GRID, GRID)
    g_rgb, _ = AdaptorSet(res.state, res.config).apply(grid, xyz.transpose(1, 2).reshape(3, -1, GRID, GRID), fg)
    assert torch.allclose(g_rgb.reshape(3, -1, GRID * GRID).transpose(1, 2), a_rgb, atol=1e-5)
    # the state rebuilds the same modules
    again = adaptors_state(adaptors_from_state(res.state, res.config))
    assert all(torch.equal(again[k], res.state[k]) for k in res.state)
    assert isinstance(adaptors_from_state(res.state, res.config)["rgb"], ModalityAdaptor)


def test_gradients_accumulate_between_optimizer_steps(monkeypatch):
    """Gradients of the micro-batches of one optimiser step add up; they are cleared only
    after the step (the reference zeroed them every micro-batch)."""
    seen = {}
    log = []

    class SpyAdamW(torch.optim.AdamW):
        def __init__(self, params, **kw):
            params = list(params)
            seen["params"] = params
            super().__init__(params, **kw)

        def step(self, closure=None):
            log.append(("step", None, None))
            return super().step(closure)

    def flat_grad():
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in seen["params"]])

    original_backward = torch.Tensor.backward

    def spy_backward(self, *args, **kwargs):
        before = flat_grad()
        original_backward(self, *args, **kwargs)
        log.append(("backward", before, flat_grad()))

    monkeypatch.setattr(torch.optim, "AdamW", SpyAdamW)
    monkeypatch.setattr(torch.Tensor, "backward", spy_backward)
    train_adaptors(make_cache(n=8), small_config(batch_size=2, grad_accum=2, epochs=1, losses=("la", "ga")))
    assert [kind for kind, _, _ in log] == ["backward", "backward", "step"] * 2
    (_, b1, a1), (_, b2, a2), _, (_, b3, _), _, _ = log
    assert b1.abs().sum() == 0 and a1.abs().sum() > 0
    assert torch.equal(b2, a1)  # kept for the second micro-batch
    assert not torch.equal(a2, a1)  # and added to
    assert b3.abs().sum() == 0  # cleared after the optimiser step


def test_explicit_epochs_are_honoured():
    from core.adaptation.config import AdaptConfig

    assert AdaptConfig.from_dict({"epochs": 1}).min_steps == 0
    assert AdaptConfig.from_dict({}).min_steps == AdaptConfig().min_steps > 0
    assert AdaptConfig.from_dict({"epochs": 1, "min_steps": 50}).min_steps == 50


def test_single_modality_skips_adaptation_unless_the_losses_were_chosen():
    from core.config import FitConfig

    assert FitConfig().skips_adaptation(("xyz",))
    assert not FitConfig().skips_adaptation(("rgb", "xyz"))
    assert not FitConfig(adapt=False).skips_adaptation(("xyz",))  # nothing to skip
    assert not FitConfig(adaptation={"losses": ["lc", "gc"]}).skips_adaptation(("xyz",))


def test_token_dropout_keeps_one_subset_for_every_mask():
    """train_max_tokens: every mask of a micro-batch is cut to the same random subset of at most
    that many tokens per image, so RGB/xyz pairs stay aligned for the cross-modal loss."""
    from core.adaptation.trainer import _token_subset

    gen = torch.Generator().manual_seed(1)
    fg = torch.rand(3, 100, generator=gen) < 0.7
    pts = fg & (torch.rand(3, 100, generator=gen) < 0.8)
    masks = {"rgb": fg, "attn_rgb": fg, "xyz": pts, "attn_xyz": pts, "pair": pts}
    cut = _token_subset(masks, 20, torch.Generator().manual_seed(5))
    assert (cut["rgb"].sum(1) == 20).all()  # every image has more than 20 foreground tokens
    for k in masks:
        assert not (cut[k] & ~masks[k]).any()  # only tokens the mask had
        assert torch.equal(cut[k], masks[k] & cut["rgb"])  # one subset for all masks
    again = _token_subset(masks, 20, torch.Generator().manual_seed(5))
    assert all(torch.equal(cut[k], again[k]) for k in masks)  # seeded
    assert not torch.equal(cut["rgb"], _token_subset(masks, 20, torch.Generator().manual_seed(6))["rgb"])
    small = _token_subset(masks, 1000, gen)
    assert all(torch.equal(small[k], masks[k]) for k in masks)  # fewer tokens than the cap: all kept
