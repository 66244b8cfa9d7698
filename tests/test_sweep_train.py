"""Training: loss goes down, runs are reproducible, divergence is caught, data is split honestly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from scalinglab.errors import InputError
from scalinglab.sweep.data import DataSpec, load_corpus
from scalinglab.sweep.model import ModelConfig, Transformer
from scalinglab.sweep.train import Diverged, TrainConfig, lr_at, optimizer_for, train

TINY = ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "loss", "scaling", "law", "token", "model"]
    for i in range(30):  # enough files for a held-out split by file
        text = " ".join(rng.choice(words, 800)) + "\n"
        (folder / f"doc{i:02d}.txt").write_text(text)
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCALINGLAB_CACHE", str(cache))
    yield load_corpus(DataSpec(source=str(folder)))
    mp.undo()


def test_one_optimiser_step_reduces_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = Transformer(TINY)
    opt = optimizer_for(model, TrainConfig(lr=3e-3, batch_tokens=256, steps=1), torch.device("cpu"))
    x = torch.randint(0, 256, (8, 32))
    y = torch.roll(x, -1, dims=1)
    before = model(x, y)
    before.backward()
    opt.step()
    with torch.no_grad():
        after = model(x, y)
    assert after.item() < before.detach().item()


def test_training_learns_and_reports_what_was_measured(corpus):
    cfg = TrainConfig(lr=1e-2, batch_tokens=512, steps=60, eval_tokens=4096, evals=3)
    r = train(TINY, cfg, corpus)
    assert r.eval_loss < math.log(256) - 2  # far below uniform over bytes
    assert r.tokens == 60 * 512 and r.steps == 60
    assert r.tokens_per_s > 0 and r.wall_time_s > 0 and r.peak_mem_bytes > 0
    curve = r.curve
    assert list(curve.columns) == ["step", "tokens", "loss", "eval_loss", "wall_s"]
    # the real clock: seconds since the run started, growing, within the run's wall time
    assert curve["wall_s"].is_monotonic_increasing and curve["wall_s"].iloc[0] >= 0
    assert curve["wall_s"].iloc[-1] <= r.wall_time_s
    assert curve["step"].is_monotonic_increasing and curve["step"].iloc[-1] == 60
    assert curve["loss"].iloc[-1] < curve["loss"].iloc[0]
    assert curve["eval_loss"].notna().sum() == 3  # two along the way and the final one
    assert abs(r.ema_loss - r.train_loss) < 0.5


def test_a_seed_makes_a_run_reproducible_on_cpu(corpus):
    cfg = TrainConfig(lr=1e-2, batch_tokens=256, steps=15, eval_tokens=2048)
    a, b = train(TINY, cfg, corpus), train(TINY, cfg, corpus)
    assert a.eval_loss == b.eval_loss and a.train_loss == b.train_loss
    c = train(TINY, TrainConfig(lr=1e-2, batch_tokens=256, steps=15, eval_tokens=2048, seed=1), corpus)
    assert c.eval_loss != a.eval_loss


def test_a_diverging_run_raises_diverged(corpus):
    with pytest.raises(Diverged, match="diverged at step"):
        train(TINY, TrainConfig(lr=1e30, batch_tokens=256, steps=20), corpus)


def test_schedules_warm_up_then_decay_to_the_floor():
    cfg = TrainConfig(lr=1.0, batch_tokens=1, steps=100, warmup=0.1, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    wsd = TrainConfig(lr=1.0, batch_tokens=1, steps=100, warmup=0.1, schedule="wsd",
                      decay_fraction=0.2)
    assert lr_at(50, wsd) == 1.0 and lr_at(79, wsd) == 1.0
    assert lr_at(99, wsd) == pytest.approx(0.1 + 0.9 / 20)
    values = [lr_at(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_text_folders_are_split_by_file_and_cached(corpus, tmp_path, monkeypatch):
    assert corpus.vocab_size == 256
    assert len(corpus.val) > 0 and len(corpus.train) > 10 * len(corpus.val)
    assert corpus.train.dtype == np.uint16


def test_the_default_corpus_is_the_stdlib_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    first = load_corpus()
    assert len(first.train) > 1_000_000 and len(first.val) > 50_000
    assert list((tmp_path / "corpus").iterdir())  # cached
    again = load_corpus()
    assert np.array_equal(first.train[:100_000], again.train[:100_000])
    assert np.array_equal(first.val, again.val)
    assert b"def " in bytes(first.val[:200_000].astype(np.uint8))  # it is Python source


def test_uint16_arrays_are_read_in_nanogpt_layout(tmp_path):
    rng = np.random.default_rng(0)
    rng.integers(0, 1000, 50_000, dtype=np.uint16).tofile(tmp_path / "train.bin")
    rng.integers(0, 1000, 5_000, dtype=np.uint16).tofile(tmp_path / "val.bin")
    c = load_corpus(DataSpec(source=str(tmp_path)))
    assert len(c.train) == 50_000 and len(c.val) == 5_000 and c.vocab_size >= 999
    np.save(tmp_path / "tokens.npy", rng.integers(0, 300, 40_000, dtype=np.uint16))
    c = load_corpus(DataSpec(source=str(tmp_path / "tokens.npy")))
    assert len(c.train) == 38_000 and c.vocab_size >= 256


def test_bad_data_sources_get_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_corpus(DataSpec(source=str(tmp_path / "missing")))
    np.save(tmp_path / "f.npy", np.zeros(10_000, dtype=np.float32))
    with pytest.raises(InputError, match="uint16"):
        load_corpus(DataSpec(source=str(tmp_path / "f.npy")))
    (tmp_path / "tiny.txt").write_text("too short")
    with pytest.raises(InputError, match="too little data"):
        load_corpus(DataSpec(source=str(tmp_path / "tiny.txt")))


def test_a_missing_tokenizer_file_is_named(tmp_path: Path):
    (tmp_path / "t.txt").write_text("x" * 10_000)
    with pytest.raises(InputError, match="tokenizer file not found"):
        load_corpus(DataSpec(source=str(tmp_path / "t.txt"), tokenizer=str(tmp_path / "tok.json")))


def test_a_local_tokenizer_file_sets_the_vocabulary(tmp_path: Path):
    tokenizers = pytest.importorskip("tokenizers")
    text = tmp_path / "t.txt"
    rng = np.random.default_rng(0)
    text.write_text(" ".join(rng.choice(["scaling", "laws", "predict", "loss", "tokens"], 40_000)))
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.train([str(text)], tokenizers.trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tok.json"))
    c = load_corpus(DataSpec(source=str(text), tokenizer=str(tmp_path / "tok.json")))
    assert c.vocab_size == tok.get_vocab_size()
    assert int(c.train.max()) < c.vocab_size
    assert len(c.train) + len(c.val) == len(tok.encode(text.read_text()).ids)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_time_is_recorded_apart_from_tokens_per_second(corpus):
    import shutil

    if shutil.which("cc") is None:
        pytest.skip("torch.compile on CPU needs a C compiler")
    cfg = TrainConfig(lr=1e-2, batch_tokens=256, steps=30, eval_tokens=1024)
    eager = train(TINY, cfg, corpus)
    compiled = train(TINY, cfg, corpus, compile=True)
    assert eager.compile_s == 0.0 and compiled.compile_s > 0.0
    # the rate is over the training steps alone: compiling took longer than all of them
    steps_s = compiled.tokens / compiled.tokens_per_s
    assert steps_s < compiled.wall_time_s - compiled.compile_s
    assert compiled.compile_s > steps_s
    # the warm-up pass took no optimiser step: the compiled run is the eager run
    assert compiled.eval_loss == pytest.approx(eager.eval_loss, rel=1e-4)
