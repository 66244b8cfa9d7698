"""Training data: a text file or folder, a pre-tokenised uint16 array, or the default corpus.

The default corpus is the Python standard library's own source (code, docstrings and the
``pydoc`` topic texts), which is on every machine that can run scalinglab: no download, and the
same bytes for the same Python version. Text is tokenised byte-level (vocabulary 256) unless a
local tokenizer file is named. The held-out split is by *file* (a stable hash of the relative
path), so evaluation text was never seen in training; a single file or array holds out its tail.

Token arrays are cached as ``uint16`` files under ``$SCALINGLAB_CACHE`` (default
``~/.cache/scalinglab``), written atomically, so sweeps and Ray workers share one build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalinglab.errors import InputError, ParameterError
from scalinglab.safefile import check_input, private_dir
from scalinglab.sweep.schema import DATA_RULES, settle

STDLIB = "stdlib"
#: cap on the default corpus, bytes: plenty for laptop sweeps, built in about a second
STDLIB_MAX_BYTES = 32_000_000
_HOLDOUT_EVERY = 20  # one file in 20 is held out


@dataclass(frozen=True)
class DataSpec:
    """Where the tokens come from; what a plan file records under ``[data]``."""

    source: str = STDLIB  # "stdlib", a text file/folder, or a .bin/.npy uint16 array
    tokenizer: str | None = None  # a local tokenizers JSON file; byte-level when None
    val_fraction: float = 0.05

    def __post_init__(self) -> None:
        problem = settle(self, DATA_RULES)  # the plan's rules; tokenizer may be None
        if problem:
            raise ParameterError(f"{problem[0]} {problem[1]}", problem[0])

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(**{k: d[k] for k in ("source", "tokenizer", "val_fraction") if k in d})


@dataclass
class Corpus:
    train: np.ndarray  # uint16 token ids
    val: np.ndarray
    vocab_size: int
    name: str

    def describe(self) -> str:
        return (f"{self.name}: {len(self.train):,} train / {len(self.val):,} held-out tokens, "
                f"vocabulary {self.vocab_size}")


def cache_dir() -> Path:
    return Path(os.environ.get("SCALINGLAB_CACHE", Path.home() / ".cache" / "scalinglab"))


def _held_out(rel: str) -> bool:
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % _HOLDOUT_EVERY == 0


def stdlib_files() -> list[tuple[str, Path]]:
    """The standard library's ``.py`` files, sorted, without third-party site-packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "site-packages" in rel or "dist-packages" in rel:
            continue
        files.append((rel, path))
    return files


def text_files(folder: Path) -> list[tuple[str, Path]]:
    """Every non-binary file under ``folder``, sorted (hidden files and folders skipped)."""
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        with path.open("rb") as fh:
            if b"\0" in fh.read(8192):
                continue
        out.append((rel, path))
    return out


class _Encoder:
    """Byte-level by default; a local ``tokenizers`` JSON file when given."""

    def __init__(self, tokenizer: str | None) -> None:
        self.tokenizer = None
        self.vocab_size = 256
        if tokenizer:
            path = Path(tokenizer)
            if not path.is_file():
                raise InputError("tokenizer file not found", source=tokenizer)
            try:
                from tokenizers import Tokenizer
            except ImportError:
                raise InputError("reading a tokenizer file needs the 'tokenizers' package "
                                 "(pip install tokenizers)", source=tokenizer) from None
            try:
                self.tokenizer = Tokenizer.from_file(str(path))
            except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise InputError(f"not a tokenizers JSON file ({first})", source=tokenizer) from None
            self.vocab_size = int(self.tokenizer.get_vocab_size())
            if self.vocab_size > 65536:
                raise InputError(f"a vocabulary of {self.vocab_size} does not fit uint16 tokens",
                                 source=tokenizer)

    def __call__(self, data: bytes) -> np.ndarray:
        if self.tokenizer is None:
            return np.frombuffer(data, dtype=np.uint8).astype(np.uint16)
        ids = self.tokenizer.encode(data.decode("utf-8", errors="replace")).ids
        return np.asarray(ids, dtype=np.uint16)


def _encode_files(files: list[tuple[str, Path]], enc: _Encoder, max_bytes: int | None,
                  val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    train, val, total = [], [], 0
    for rel, path in files:
        data = path.read_bytes()
        if max_bytes is not None and total + len(data) > max_bytes:
            break
        total += len(data)
        (val if _held_out(rel) else train).append(enc(data + b"\n"))
    if len(files) < _HOLDOUT_EVERY or not val or not train:  # too few files: hold out the tail
        allt = np.concatenate(train + val) if train or val else np.zeros(0, np.uint16)
        return _split_tail(allt, val_fraction)
    return np.concatenate(train), np.concatenate(val)


def _split_tail(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    cut = int(len(tokens) * (1 - val_fraction))
    return tokens[:cut], tokens[cut:]


def _fingerprint(spec: DataSpec, files: list[tuple[str, Path]]) -> str:
    h = hashlib.sha1(repr((spec.to_dict(), sys.version_info[:2])).encode())
    for rel, path in files:
        h.update(f"{rel}:{path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _cached(key: str) -> tuple[np.ndarray, np.ndarray] | None:
    folder = cache_dir() / "corpus" / key
    try:
        return (np.fromfile(folder / "train.bin", dtype=np.uint16),
                np.fromfile(folder / "val.bin", dtype=np.uint16))
    except OSError:
        return None


def _store(key: str, train: np.ndarray, val: np.ndarray) -> None:
    """Cache the tokens (only a corpus that passed its checks), in folders only this user can
    enter (0700) and files only this user can read (0600): the tokens decode back to the text,
    and a plan naming a private file once left them world-readable in the cache. A cache that
    cannot be written is skipped (it only saves time)."""
    with contextlib.suppress(OSError, InputError):
        private_dir(cache_dir())
        folder = private_dir(private_dir(cache_dir() / "corpus") / key)
        for name, arr in (("train.bin", train), ("val.bin", val)):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(arr.astype(np.uint16).tobytes())
            os.replace(tmp, folder / name)


def load_corpus(spec: DataSpec = DataSpec()) -> Corpus:
    """Tokens for training and held-out evaluation; raises :class:`InputError` on bad data
    (missing, unreadable, empty or too small), naming the source."""
    try:
        return _load(spec)
    except OSError as exc:  # unreadable file or folder: permissions, a vanished file, I/O
        where = exc.filename or spec.source
        raise InputError(f"cannot read the data ({exc.strerror or type(exc).__name__})",
                         source=str(where)) from None


def _load(spec: DataSpec) -> Corpus:
    if spec.source == STDLIB:
        files, name, max_bytes = stdlib_files(), f"python{sys.version_info[0]}.{sys.version_info[1]} stdlib", STDLIB_MAX_BYTES
        if not files:
            raise InputError("the Python standard library source was not found; name a text "
                             "file or folder as the data source", source=STDLIB)
    else:
        path = Path(spec.source)
        if not path.exists():
            raise InputError("data source not found (a text file or folder, a uint16 .bin/.npy "
                             "array, or 'stdlib')", source=spec.source)
        check_input(path, folder=True)  # a FIFO or device: refused before reading
        if path.suffix in (".bin", ".npy") or (path.is_dir() and (path / "train.bin").is_file()):
            return _load_array(path, spec)
        files = text_files(path) if path.is_dir() else [(path.name, path)]
        name, max_bytes = str(path), None
        if not files:
            raise InputError("no text files in this folder", source=spec.source)
    key = _fingerprint(spec, files)
    hit = _cached(key)
    enc = _Encoder(spec.tokenizer)
    if hit is None:
        train, val = _encode_files(files, enc, max_bytes, spec.val_fraction)
    else:
        train, val = hit
    corpus = _checked(Corpus(train, val, enc.vocab_size, name), spec.source)
    if hit is None:
        _store(key, train, val)  # only data that passed its checks is cached
    return corpus


def _load_array(path: Path, spec: DataSpec) -> Corpus:
    """nanoGPT's layout (a folder with train.bin and val.bin), or one .bin/.npy array."""
    def read(p: Path) -> np.ndarray:
        if p.suffix == ".npy":
            try:
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:  # not a .npy file, or an object array
                raise InputError(f"not a readable .npy array ({exc})", source=str(p)) from None
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint16 or arr.ndim != 1:
                got = f"{arr.ndim}-D {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise InputError(f"expected a 1-D uint16 array, got {got}", source=str(p))
            return arr
        if p.stat().st_size % 2:
            raise InputError("size is not a whole number of uint16 tokens", source=str(p))
        if p.stat().st_size == 0:
            raise InputError("the file is empty", source=str(p))
        return np.memmap(p, dtype=np.uint16, mode="r")

    if path.is_dir():
        train = read(path / "train.bin")
        val = read(path / "val.bin") if (path / "val.bin").is_file() else None
        if val is None:
            train, val = _split_tail(train, spec.val_fraction)
    else:
        train, val = _split_tail(read(path), spec.val_fraction)
    vocab = 256 if spec.tokenizer is None else _Encoder(spec.tokenizer).vocab_size
    vocab = max(vocab, int(max(train.max(initial=0), val.max(initial=0))) + 1)
    return _checked(Corpus(train, val, vocab, str(path)), str(path))


def _checked(corpus: Corpus, source: str) -> Corpus:
    if len(corpus.train) < 4096 or len(corpus.val) < 1024:
        raise InputError(f"too little data ({len(corpus.train):,} train / {len(corpus.val):,} "
                         "held-out tokens; at least 4,096 / 1,024)", source=source)
    return corpus


class Batches:
    """Random training windows, reproducible from a seed (nanoGPT's sampling)."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, seed: int,
                 device: str | torch.device = "cpu") -> None:
        if len(tokens) <= seq_len + 1:
            raise ParameterError(f"{len(tokens)} tokens cannot fill a window of seq_len = "
                                 f"{seq_len}", "seq_len")
        self.tokens, self.seq_len, self.batch_size = tokens, seq_len, batch_size
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.rng.integers(0, len(self.tokens) - self.seq_len - 1, self.batch_size)
        return windows(self.tokens, starts, self.seq_len, self.device)


def windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    block = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))
    if device.type == "cuda":
        block = block.pin_memory().to(device, non_blocking=True)
    return block[:, :-1], block[:, 1:]


def eval_windows(tokens: np.ndarray, seq_len: int, n_tokens: int) -> np.ndarray:
    """Evenly spaced, non-overlapping held-out windows: the same ones for every run."""
    n = max(1, min(n_tokens // seq_len, (len(tokens) - 1) // seq_len))
    return np.linspace(0, len(tokens) - seq_len - 1, n).astype(np.int64)
