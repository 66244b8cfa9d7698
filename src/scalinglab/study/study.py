"""The Study: one object between a run store (or a frame) and every face.

Optuna's split is the model: the Study sees the storage; the command line, the report, the
dashboard and a notebook see the Study. It answers the questions the faces ask -- which runs,
the fitted loss law, the IsoFLOP allocation, the rolling-forward check, the lr/batch laws, the
plan, the loss curves -- each as a registered :class:`~scalinglab.results.Result`, computed by
the engines (:mod:`scalinglab.study.analysis` applies the one run-selection rule) and cached
by the store's state, so the report and the dashboard share one answer and a sweep writing runs
refreshes them::

    study = Study("runs.duckdb", tags={"dataset": "c4"})
    fit = study.fit("chinchilla")          # a FitResult, cached until the store changes
    study.isoflop(); study.rolling("chinchilla"); study.plan(1e22)

``where`` filters with the store's safe ``--where`` language; ``selection`` holds the
selection rule's options (``best_per_point``, ``group_by``); ``bootstrap`` is the default
number of resamples of every fit (:data:`DEFAULT_BOOTSTRAP`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scalinglab.errors import ParameterError
from scalinglab.stats import DEFAULT_BOOTSTRAP  # the one default (re-exported)
from scalinglab.study import analysis
from scalinglab.study.cache import Cache, store_state


class FrameStore:
    """A frame of runs standing in for a run store: the same ``runs(where, status, tags)``.

    Runs without a ``status`` column count as finished; ``tags`` filter a ``tags`` column of
    dicts (as :meth:`RunStore.runs` returns it)."""

    def __init__(self, frame: pd.DataFrame, name: str = "<frame>") -> None:
        self.frame = frame.reset_index(drop=True)
        self.path = name

    def runs(self, where: str | None = None, status: str | None = "finished",
             tags: Mapping[str, str] | None = None) -> pd.DataFrame:
        from scalinglab.runs.where import filter_frame

        f = self.frame
        if status is not None and "status" in f:
            f = f[f["status"] == status]
        if tags:
            if "tags" not in f:
                return f.iloc[0:0]
            keep = [isinstance(t, Mapping) and all(str(t.get(k)) == v for k, v in tags.items())
                    for t in f["tags"]]
            f = f[keep]
        return filter_frame(f, where).reset_index(drop=True) if where else f.reset_index(drop=True)

    def curve(self, run_id: str) -> pd.DataFrame:
        raise KeyError(f"a frame of runs holds no loss curves (run {run_id!r})")


class Study:
    """Questions about one set of runs, answered once per store state (see the module)."""

    def __init__(self, source: Any, *, where: str | None = None,
                 tags: Mapping[str, str] | None = None,
                 selection: Mapping[str, Any] | None = None,
                 bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 lock_timeout_s: float | None = None,
                 filter: Callable[[pd.DataFrame], pd.DataFrame] | None = None,  # noqa: A002
                 state_suffix: Callable[[], str] | None = None,
                 missing_store: Callable[[Path], Any] | None = None,
                 name: str = "", cache_size: int = 64) -> None:
        self.where = where
        self.name = name  # what the engines' errors name as the runs' source ("" : none)
        self.tags = dict(tags or {})
        selection = dict(selection or {})
        unknown = set(selection) - {"best_per_point", "group_by"}
        if unknown:
            raise ParameterError(f"selection takes best_per_point and group_by, not "
                                 f"{sorted(unknown)}", "selection")
        self.best_per_point = bool(selection.get("best_per_point", False))
        self.group_by = tuple(selection.get("group_by", ()))
        self.bootstrap = int(bootstrap)
        self.seed = int(seed)
        self.filter = filter
        self.state_suffix = state_suffix
        self.cache = Cache(cache_size)
        self._lock_timeout_s = lock_timeout_s
        self._missing_store = missing_store
        self._store: Any = None
        self.path: Path | None = None
        if isinstance(source, pd.DataFrame):
            self._store = FrameStore(source)
            self._frame_state = "frame-" + hashlib.sha1(
                pd.util.hash_pandas_object(source.astype(str), index=False).values.tobytes()
            ).hexdigest()[:16]
        elif isinstance(source, (str, Path)):
            self.path = Path(source)
        else:  # a RunStore (or anything with runs(where, status, tags))
            self._store = source
            path = getattr(source, "path", None)
            self.path = Path(path) if isinstance(path, (str, Path)) else None

    # -- the store and its state ---------------------------------------------------------------

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else str(getattr(self._store, "path", ""))

    def store(self) -> Any:
        """The run store (opened read-only for each question: a sweep may be writing)."""
        if self._store is not None:
            return self._store
        assert self.path is not None
        if not self.path.exists() and self._missing_store is not None:
            return self._missing_store(self.path)
        from scalinglab.runs.store import RunStore

        kwargs = {} if self._lock_timeout_s is None else {"lock_timeout_s": self._lock_timeout_s}
        return RunStore(self.path, read_only=True, **kwargs)

    def state(self) -> str:
        """A token that changes whenever the runs may have (the key of every cached answer)."""
        base = store_state(self.path) if self.path is not None else getattr(
            self, "_frame_state", f"object-{id(self._store):x}")
        return base + (self.state_suffix() if self.state_suffix is not None else "")

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per store state and ``key`` (faces cache what they derive too)."""
        return self.cache.get((self.state(), *key), compute)

    def _tags(self, tags: Mapping[str, str] | None) -> dict[str, str]:
        return {**self.tags, **dict(tags or {})}

    # -- questions -----------------------------------------------------------------------------

    def runs(self, tags: Mapping[str, str] | None = None, status: str | None = "finished"
             ) -> pd.DataFrame:
        """The runs of this study (``status=None``: every status), filtered as it says."""
        tags = self._tags(tags)
        key = ("runs", tuple(sorted(tags.items())), status)

        def read() -> pd.DataFrame:
            frame = self.store().runs(where=self.where, status=status, tags=tags or None)
            return self.filter(frame) if self.filter is not None else frame

        return self.cached(key, read)

    def _boot(self, bootstrap: int | None) -> int:
        return self.bootstrap if bootstrap is None else int(bootstrap)

    def fit(self, law: str = "chinchilla", *, tags: Mapping[str, str] | None = None,
            bootstrap: int | None = None, holdout: int = 0, seed: int | None = None,
            starts: int | None = None, warm: Any = None) -> Any:
        """The loss law fitted to the runs the selection rule keeps (a FitResult).

        ``seed`` overrides the study's; ``starts`` thins the law's start grid to about that many
        points and ``warm`` (a previous FitResult) starts from its estimate too: the lighter fits
        an adaptive study makes between rounds (a warm fit is not cached: it depends on an
        object, not on the store)."""
        tags, boot = self._tags(tags), self._boot(bootstrap)
        seed = self.seed if seed is None else int(seed)

        def compute() -> Any:
            return analysis.fit_loss_law(
                self.runs(tags), law, boot, holdout, seed, best_per_point=self.best_per_point,
                group_by=self.group_by, source=self.name, starts=starts, warm=warm)

        if warm is not None:
            return compute()
        return self.cached(("fit", law, tuple(sorted(tags.items())), boot, holdout, seed, starts),
                           compute)

    def rolling(self, law: str = "chinchilla", *, tags: Mapping[str, str] | None = None,
                bootstrap: int | None = None, steps: int = analysis.ROLLING_STEPS,
                min_budgets: int = analysis.MIN_ROLLING_BUDGETS) -> Any:
        """The law fitted below each compute cut-off and asked about the budgets above (a
        RollingForward)."""
        tags, boot = self._tags(tags), self._boot(bootstrap)
        key = ("rolling", law, tuple(sorted(tags.items())), boot, steps, min_budgets)
        return self.cached(key, lambda: analysis.rolling_check(
            self.runs(tags), law, boot, self.seed, best_per_point=self.best_per_point,
            group_by=self.group_by, source=self.name, steps=steps, min_budgets=min_budgets))

    def isoflop(self, *, tags: Mapping[str, str] | None = None,
                bootstrap: int | None = None) -> Any:
        """Hoffmann et al.'s Approaches 1 and 2 on the runs' IsoFLOP profiles (an IsoFlopResult)."""
        tags, boot = self._tags(tags), self._boot(bootstrap)
        key = ("isoflop", tuple(sorted(tags.items())), boot)
        return self.cached(key, lambda: analysis.fit_isoflop(
            self.runs(tags), boot, self.seed, best_per_point=self.best_per_point,
            group_by=self.group_by, source=self.name))

    def allocation(self, compute: float, *, tags: Mapping[str, str] | None = None,
                   bootstrap: int | None = None) -> dict[str, Any]:
        """The compute-optimal N and D at ``compute`` by each IsoFLOP approach, with intervals."""
        return self.isoflop(tags=tags, bootstrap=bootstrap).optimum(float(compute))

    def hparams(self, *, tags: Mapping[str, str] | None = None,
                bootstrap: int | None = None) -> tuple[dict[str, Any], str | None]:
        """The lr/batch laws: the published ones and, from an lr x batch grid among the runs,
        the fitted one (``"fitted"``); with why there is none."""
        tags, boot = self._tags(tags), self._boot(bootstrap)
        key = ("hparams", tuple(sorted(tags.items())), boot)
        return self.cached(key, lambda: analysis.hparam_laws(self.runs(tags), boot, self.seed))

    def plan(self, compute: float | None = None, *, law: str = "chinchilla",
             tags: Mapping[str, str] | None = None, bootstrap: int | None = None,
             hparams: Any = None, seq_len: int | None = None,
             batch_tokens: float | None = None) -> Any:
        """A Plan at ``compute`` (default: 100x the runs' largest) from the fitted ``law`` and the
        lr/batch law fitted on the runs (else Step Law), at the runs' sequence length and batch."""
        runs = self.runs(tags)
        budget = float(compute) if compute is not None else analysis.default_budget(runs)
        fit = self.fit(law, tags=tags, bootstrap=bootstrap)
        if hparams is None:
            hparams = self.hparams(tags=tags, bootstrap=bootstrap)[0].get("fitted")
        context = analysis.run_context(runs)
        return analysis.make_plan(budget, fit, hparams,
                                  seq_len=seq_len or context.seq_len or 2048,
                                  batch_tokens=batch_tokens or context.batch_tokens)

    def curves(self, run_ids: Iterable[str], law: str = "multipower", *,
               bootstrap: int | None = None, **options: Any) -> Any:
        """A loss-curve law (:func:`scalinglab.fit.curves.fit_curves`) fitted to these runs'
        curves from the store (a CurveFit)."""
        from scalinglab.fit.curves import fit_curves

        ids = tuple(run_ids)
        boot = self._boot(bootstrap)

        def compute() -> Any:
            store = self.store()
            frames = []
            for rid in ids:
                curve = store.curve(rid)
                frames.append(curve.assign(run=rid))
            return fit_curves(pd.concat(frames, ignore_index=True), law=law, bootstrap=boot,
                              seed=self.seed, **options)

        return self.cached(("curves", ids, law, boot, tuple(sorted(options.items()))), compute)

    def summarise(self, **options: Any) -> analysis.Summary:
        """Everything the report shows (:func:`scalinglab.study.analysis.summarise`)."""
        options.setdefault("bootstrap", self.bootstrap)
        options.setdefault("seed", self.seed)
        options.setdefault("best_per_point", self.best_per_point)
        options.setdefault("group_by", self.group_by)
        options.setdefault("where", self.where)
        return analysis.summarise(self.store(), tags=options.pop("tags", self.tags), **options)

    def __repr__(self) -> str:
        where = f", where={self.where!r}" if self.where else ""
        tags = f", tags={self.tags}" if self.tags else ""
        return f"<Study {self.source}{tags}{where}, bootstrap={self.bootstrap}>"


__all__ = ["DEFAULT_BOOTSTRAP", "FrameStore", "Study"]
