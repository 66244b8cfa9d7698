"""``scalinglab sweep plan isoflop|grid`` and ``scalinglab sweep run``.

torch is imported inside the commands, so ``--help`` and the other commands stay fast. Results
go to stdout (``--json``: nothing but the JSON); notes, warnings and progress go to stderr.
Everything a command is asked is checked (flags, plan file, data) before the store is opened,
so a rejected command leaves the store as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scalinglab.clikit import (
    DEFAULT_STORE,
    UserError,
    command_inputs,
    console,
    emit_json,
    err_console,
    new_app,
    quantities,
    quantity,
)

if TYPE_CHECKING:
    from scalinglab.sweep.data import DataSpec
    from scalinglab.sweep.plan import Defaults, SweepPlan

sweep_app = new_app(help="Plan and run sweeps of real transformers into the run store.",
                        no_args_is_help=True)
plan_app = new_app(help="Write a sweep plan (TOML) to read, edit and run.", no_args_is_help=True)
sweep_app.add_typer(plan_app, name="plan")


def _defaults(seq_len: int, batch: int, lr: float, weight_decay: float, schedule: str,
              warmup: float, seed: int, positions: str, untied: bool, aspect: float,
              ffn_ratio: float, vocab_size: int) -> Defaults:
    """The plan's shared settings; Defaults checks them with the plan file's rules and names
    the field, which the command group shows as this command's flag."""
    from scalinglab.sweep.plan import Defaults

    return Defaults(seq_len=seq_len, batch_tokens=batch, lr=lr, weight_decay=weight_decay,
                    schedule=schedule, warmup=warmup, seed=seed, positions=positions,
                    tie_embeddings=not untied, aspect=aspect, ffn_ratio=ffn_ratio,
                    vocab_size=vocab_size)


def data_spec(data: str, tokenizer: Path | None = None) -> DataSpec:
    """``--data`` (and ``--tokenizer``) of every command that plans runs (sweep plan, isoflop,
    design next, sweep auto): 'stdlib' or an existing path, resolved; else one line saying what
    it may be."""
    from scalinglab.sweep.data import STDLIB, DataSpec

    if data != STDLIB and not Path(data).exists():
        raise UserError(f"--data {data}: not found (a text file or folder, a uint16 .bin/.npy "
                        "array, or 'stdlib' for the built-in corpus)")
    return DataSpec(source=data if data == STDLIB else str(Path(data).resolve()),
                    tokenizer=str(tokenizer.resolve()) if tokenizer else None)


def _vocab(data_spec: DataSpec, vocab_size: int | None) -> int:
    if vocab_size is not None:
        return vocab_size
    tok = data_spec.tokenizer
    if tok:
        from scalinglab.sweep.data import _Encoder

        return _Encoder(tok).vocab_size
    return 256


def _written(plan: SweepPlan, out: Path, json_: bool) -> None:
    plan.save(out, inputs=command_inputs("out"))
    runs = plan.runs
    if json_:
        emit_json({"plan": str(out), "runs": len(runs), "total_compute": plan.total_compute,
                   "notes": plan.notes})
        return
    from scalinglab.clikit import print_table

    # a rich table on a terminal, plain aligned text into a pipe (title on stderr)
    print_table(("budget", "N", "shape (d x L, heads)", "D", "tokens/param", "steps", "lr", "batch"),
                ([f"{r.budget:.3g}" if r.budget else "-", f"{r.N:,}",
                  f"{r.model.d_model} x {r.model.n_layers}, {r.model.n_heads}", f"{r.D:.3g}",
                  f"{r.D / r.N:.1f}", f"{r.train.steps:,}", f"{r.train.lr:g}",
                  f"{r.tokens_per_step:,}"] for r in runs),
                title=f"{out}: {len(runs)} runs, {plan.total_compute:.3g} FLOPs")
    _notes(plan.notes)
    err_console.print(f"run it with: scalinglab sweep run {out}", highlight=False, soft_wrap=True)


def _notes(notes: list[str]) -> None:
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


_SEQ = typer.Option(128, "--seq-len", help="Context length, tokens.")
_BATCH_DEFAULT = typer.Option(2048, "--batch-tokens", help="Tokens per optimiser step.")
_LR_DEFAULT = typer.Option(3e-3, "--lr", help="Peak learning rate (AdamW).")
_WD = typer.Option(0.1, "--weight-decay", help="AdamW decoupled weight decay.")
_SCHED = typer.Option("cosine", "--schedule", help="cosine, wsd (warmup-stable-decay) or constant.")
_WARM = typer.Option(0.05, "--warmup", help="Warmup, as a fraction of the steps.")
_SEED = typer.Option(0, "--seed", help="Seed of initialisation and data order.")
_POS = typer.Option("rope", "--positions", help="rope or learned.")
_UNTIED = typer.Option(False, "--untied", help="Separate output head (default: tied embeddings).")
_ASPECT = typer.Option(64.0, "--aspect", help="Target d_model / n_layers when choosing shapes.")
_FFN = typer.Option(4.0, "--ffn-ratio", help="MLP width / d_model.")
_VOCAB = typer.Option(None, "--vocab-size", help="Vocabulary (default 256 bytes, or the tokenizer's).")
_DATA = typer.Option("stdlib", "--data", help="'stdlib' (built-in corpus), a text file or folder, "
                     "or a uint16 .bin/.npy token array.")
_TOKENIZER = typer.Option(None, "--tokenizer", help="A local tokenizers JSON file (default: bytes).")
_JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


@plan_app.command("isoflop")
def plan_isoflop(
    budgets: Any = typer.Option(..., "--budgets", parser=quantities("--budgets", finite=False),
                                help="Compute budgets, FLOPs (6ND), comma-separated (e.g. 1e13,3e13)."),
    sizes: int = typer.Option(5, "--sizes", help="Model sizes per budget."),
    span: float = typer.Option(16.0, "--span", help="Largest / smallest N in a budget."),
    tokens_per_param: float = typer.Option(20.0, "--tokens-per-param",
                                           help="Centre the sizes on the N where D/N is this."),
    out: Path = typer.Option(Path("isoflop.toml"), "--out", "-o", help="Plan file to write."),
    name: str = typer.Option("isoflop", "--name", help="Sweep name (tag 'sweep' of its runs)."),
    data: str = _DATA, tokenizer: Path = _TOKENIZER, seq_len: int = _SEQ,
    batch_tokens: int = _BATCH_DEFAULT, lr: float = _LR_DEFAULT, weight_decay: float = _WD,
    schedule: str = _SCHED, warmup: float = _WARM, seed: int = _SEED, positions: str = _POS,
    untied: bool = _UNTIED, aspect: float = _ASPECT, ffn_ratio: float = _FFN,
    vocab_size: int = _VOCAB, json_: bool = _JSON,
) -> None:
    """Plan an IsoFLOP sweep: at each budget, models log-spaced around the 20-tokens-per-
    parameter size, each trained on D = C/(6N) tokens.

    Examples:

        scalinglab sweep plan isoflop --budgets 1e13,3e13,1e14 --sizes 5 --out iso.toml

        scalinglab sweep plan isoflop --budgets 1e12,1e13 --data corpus/ --seq-len 256
    """
    from scalinglab.sweep.plan import isoflop_plan

    spec = data_spec(data, tokenizer)
    defaults = _defaults(seq_len, batch_tokens, lr, weight_decay, schedule, warmup, seed,
                         positions, untied, aspect, ffn_ratio, _vocab(spec, vocab_size))
    plan = isoflop_plan(budgets, sizes=sizes, span=span,
                        tokens_per_param=tokens_per_param, data=spec, defaults=defaults,
                        name=name)
    _written(plan, out, json_)


@plan_app.command("grid")
def plan_grid(
    lrs: Any = typer.Option(..., "--lr", parser=quantities("--lr", finite=False),
                            help="Peak learning rates, comma-separated."),
    batches: Any = typer.Option(..., "--batch", parser=quantities("--batch", finite=False),
                                help="Batch sizes in tokens, comma-separated (e.g. 1024,4k)."),
    sizes: Any = typer.Option(..., "--sizes", parser=quantities("--sizes", finite=False),
                              help="Target N (non-embedding), comma-separated (e.g. 1e5,4e5)."),
    tokens: float = typer.Option(None, "--tokens", parser=quantity("--tokens"),
                                 help="Training tokens per run (default: 20 N)."),
    tokens_per_param: float = typer.Option(20.0, "--tokens-per-param", help="D/N when --tokens is not given."),
    out: Path = typer.Option(Path("grid.toml"), "--out", "-o", help="Plan file to write."),
    name: str = typer.Option("grid", "--name", help="Sweep name (tag 'sweep' of its runs)."),
    data: str = _DATA, tokenizer: Path = _TOKENIZER, seq_len: int = _SEQ,
    weight_decay: float = _WD, schedule: str = _SCHED, warmup: float = _WARM, seed: int = _SEED,
    positions: str = _POS, untied: bool = _UNTIED, aspect: float = _ASPECT,
    ffn_ratio: float = _FFN, vocab_size: int = _VOCAB, json_: bool = _JSON,
) -> None:
    """Plan an lr x batch grid at each model size, as Step Law's sweeps were laid out; fit your
    own lr/batch law from the results with `scalinglab hparams fit --store`.

    Examples:

        scalinglab sweep plan grid --lr 1e-3,3e-3,1e-2 --batch 1024,2048,4096 --sizes 1e5,4e5

        scalinglab sweep plan grid --lr 2e-3,4e-3 --batch 2048 --sizes 3e5 --tokens 2e7
    """
    from scalinglab.sweep.plan import check_grid, grid_plan

    spec = data_spec(data, tokenizer)
    check_grid(lrs, batches, sizes, seq_len)  # before they make the defaults
    batch_ints = [int(b) for b in batches]
    defaults = _defaults(seq_len, min(batch_ints), lrs[0], weight_decay, schedule, warmup,
                         seed, positions, untied, aspect, ffn_ratio, _vocab(spec, vocab_size))
    plan = grid_plan(lrs, batch_ints, sizes, tokens=tokens,
                     tokens_per_param=tokens_per_param, data=spec, defaults=defaults,
                     name=name)
    _written(plan, out, json_)


@sweep_app.command("run")
def run(
    plan_file: Path = typer.Argument(..., help="Plan file from `scalinglab sweep plan`."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="DuckDB run store file."),
    backend: str = typer.Option("local", "--backend", help="local (this machine) or ray."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:K, mps or auto."),
    address: str = typer.Option(None, "--address",
                                help="Ray cluster to join (e.g. ray://head:10001); default: start one here."),
    cpus_per_run: int = typer.Option(None, "--cpus-per-run",
                                     help="CPU threads per run (Ray: CPUs reserved per task)."),
    gpus_per_run: float = typer.Option(None, "--gpus-per-run",
                                       help="Share of a GPU per run, e.g. 0.25: four small runs "
                                            "train side by side on each GPU (Ray packs them; the "
                                            "local backend starts worker processes)."),
    compile_: bool = typer.Option(False, "--compile",
                                  help="torch.compile each model (GPU); compile time is "
                                       "recorded apart from tokens/s."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again."),
    workers: int = typer.Option(1, "--workers", "-j",
                                help="Local runs trained at once, in worker processes (CPU, "
                                     "or sharing the CUDA device)."),
    log: Path = typer.Option(None, "--log",
                             help="Write each run's training log to LOG/RUN_ID.log (read back "
                             "with `scalinglab import LOG --from log`)."),
    json_: bool = _JSON,
) -> None:
    """Train every run of a plan not already in the store, writing each result as it ends.

    Rerunning skips finished (and failed) runs; Ctrl-C loses at most the runs in flight; a run
    that diverges or crashes is recorded as failed with its error, and the sweep goes on. The
    plan, the flags and the data are checked before the store is opened. Progress and notes go
    to stderr; with --json, stdout holds only the JSON report.

    Examples:

        scalinglab sweep run iso.toml --store runs.duckdb

        scalinglab sweep run iso.toml --workers 4 --cpus-per-run 2   # 4 runs at once on 8 cores

        scalinglab sweep run iso.toml --device cuda --gpus-per-run 0.25   # 4 runs per GPU

        scalinglab sweep run iso.toml --backend ray --device cuda --gpus-per-run 0.25 --address auto
    """
    from scalinglab.runs.store import RunStore
    from scalinglab.sweep.display import RichProgress
    from scalinglab.sweep.plan import load_plan
    from scalinglab.sweep.runner import check_data, data_is_local, pending, placement, run_plan

    placement(backend, device, workers, gpus_per_run, cpus_per_run)  # the request, checked
    plan = load_plan(plan_file)
    todo = plan.runs
    if store.exists():  # read-only: what is left to train, without touching the store
        with RunStore(store, read_only=True) as held:
            todo = pending(plan, held, retry_failed)
    if backend != "ray" or address is None or data_is_local(plan):
        check_data(plan, todo)  # the data each run needs, loaded once and checked against them
    _notes(plan.notes)
    runs = RunStore(store)
    with RichProgress() as progress:
        report = run_plan(plan, runs, backend=backend, device=device, address=address,  # type: ignore[arg-type]
                          cpus_per_run=cpus_per_run, compile=compile_, retry_failed=retry_failed,
                          progress=progress, source=str(plan_file), workers=workers,
                          log_dir=None if log is None else str(log),
                          gpus_per_run=gpus_per_run)
    if json_:
        emit_json(report.to_dict() | {"store": str(store), "plan": str(plan_file),
                                      "notes": plan.notes})
    else:
        console.print(f"{report.finished} finished, {report.failed} failed, {report.skipped} "
                      f"already in {store}, in {report.wall_time_s:.1f} s", highlight=False)
    if report.interrupted:
        err_console.print("[yellow]interrupted[/]: finished runs are saved; run the same "
                          "command to resume", highlight=False)
        raise typer.Exit(130)


