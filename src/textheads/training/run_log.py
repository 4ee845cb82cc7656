"""The log of a training run: `train_log.jsonl`, and the experiment trackers that
`train.report_to` names (accelerate's TensorBoard and MLflow trackers).

Every record goes to `train_log.jsonl` as it is; its numbers also go to each
tracker at the record's `step`: `train/loss`, `train/loss/HEAD`, `train/lr`
(and `train/lr/GROUP` per parameter group), `validation/HEAD/METRIC` from each
evaluation, `thresholds/HEAD/LABEL` once thresholds are chosen, and the run
config as hyper-parameters. Only the main process of a distributed run writes.

Where trackers write: TensorBoard under `output_dir/tensorboard/`; MLflow to
`MLFLOW_TRACKING_URI` when it is set, else to a SQLite store in
`output_dir/mlflow.db` (never the current directory, MLflow's own default),
in experiment `MLFLOW_EXPERIMENT_NAME` or `textheads`, as a run named after
`output_dir`. What a tracker writes inside `output_dir` is listed in the
folder's marker, so `--overwrite` removes it and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch
import yaml

from textheads.config import RunConfig, dump_config
from textheads.errors import ConfigError, MissingExtraError
from textheads.ownership import read_marker, record_files
from textheads.specs import HeadSpec
from textheads.training.run_folder import flatten_keys

if TYPE_CHECKING:
    from typing_extensions import Self

TENSORBOARD_DIR = "tensorboard"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
MLFLOW_EXPERIMENT = "textheads"
_REQUIRED = {
    "tensorboard": ("accelerate", "tensorboard"),
    "mlflow": ("accelerate", "mlflow"),
}
"""The packages each tracker needs; the extra to install is named after the tracker."""
_LOCAL_MLFLOW_STORE = ("sqlalchemy", "alembic")
"""What MLflow's SQLite store needs besides MLflow (mlflow-skinny leaves them out)."""
_UNSAFE = re.compile(r"[^\w\-. :/]")
"""Characters MLflow refuses in a metric name (TensorBoard takes the same names)."""


def check_trackers(report_to: Sequence[str]) -> None:
    """Raise `MissingExtraError` naming the extra to install when a tracker's packages are missing."""
    for name in report_to:
        packages = _REQUIRED[name]
        if name == "mlflow" and not os.environ.get("MLFLOW_TRACKING_URI"):
            packages += _LOCAL_MLFLOW_STORE
        for package in packages:
            if importlib.util.find_spec(package) is None:
                raise MissingExtraError(package, name)


def check_tracker_folders(report_to: Sequence[str], output_dir: Path) -> None:
    """Raise `ConfigError` when a tracker would write into an entry of `output_dir` that
    textheads did not write (and so must never replace or delete)."""
    listed = (read_marker(output_dir) or {}).get("files", [])
    for name in report_to:
        for entry in tracker_entries(name):
            if (output_dir / entry).exists() and entry not in listed:
                raise ConfigError(
                    f"{output_dir / entry} exists and was not written by textheads, so train.report_to: "
                    f"[{name}] will not write into it: move it away, or choose another --output-dir "
                    "(output_dir in the config)."
                )


def tracker_entries(tracker: str) -> tuple[str, ...]:
    """What `tracker` writes inside the run folder."""
    if tracker == "tensorboard":
        return (TENSORBOARD_DIR,)
    return () if os.environ.get("MLFLOW_TRACKING_URI") else (MLFLOW_DB, MLFLOW_ARTIFACTS)


def is_main_process() -> bool:
    """True in the process that writes: the only one, or rank 0 of a distributed run.

    Read from torch.distributed or the launchers' `RANK` (what accelerate's
    `PartialState` reads too), without creating a `PartialState`: that would fix
    accelerate's settings before the training loop's `Accelerator` chooses them."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """`lr/GROUP` of each named parameter group (`heads`, `encoder`, `encoder.depthK`)."""
    rates = {}
    for index, group in enumerate(optimizer.param_groups):
        name = str(group.get("name", index)).removesuffix(".no_decay").removesuffix(".depth0")
        rates[f"lr/{name}"] = float(group["lr"])
    return rates


def hyperparameters(config: RunConfig) -> dict[str, bool | int | float | str]:
    """The run config as flat `section.key` hyper-parameters; lists and None as JSON text."""
    flat = flatten_keys(yaml.safe_load(dump_config(config)))
    return {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value) for key, value in flat.items()}


def thresholds_record(specs: Mapping[str, HeadSpec], step: int) -> dict[str, Any] | None:
    """The `thresholds` record of the multilabel heads' per-label thresholds, or None without one."""
    chosen = {name: spec.thresholds_by_label() for name, spec in specs.items() if spec.kind == "multilabel"}
    return {"event": "thresholds", "step": step, "thresholds": chosen} if chosen else None


def tracker_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a `train_log.jsonl` record, named as the trackers show them."""
    event = record.get("event")
    if event is None:  # a training-steps record: losses, learning rate, epoch
        return {f"train/{key.replace('.', '/', 1)}": float(value) for key, value in record.items() if key != "step" and _is_number(value)}
    if event == "evaluation":
        validation = dict(record.get("validation", {}))
        if "metric" in record:  # the metric that picks the best model (`mean_macro_f1` is not in the summary)
            validation.setdefault(record["metric"], record.get("value"))
        scalars = {}
        for key, value in validation.items():
            head, _, metric = key.rpartition(".")  # `head.metric`, or `loss` / `mean_macro_f1`
            scalars[f"validation/{head}/{metric}" if head else f"validation/{metric}"] = value
        return {key: float(value) for key, value in scalars.items() if _is_number(value)}
    if event == "thresholds":
        return {f"thresholds/{head}/{label}": float(value) for head, labels in record["thresholds"].items() for label, value in labels.items()}
    return {}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RunLog:
    """Appends records to `output_dir/train_log.jsonl` and forwards their numbers to trackers.

    Use as a context manager (or call `close`), which ends the trackers' runs:

        with RunLog(output_dir, ["tensorboard"], config) as log:
            log.write({"step": 20, "loss": 0.41, "loss.topics": 0.52, "lr": 8e-5})
    """

    def __init__(self, output_dir: Path, report_to: Sequence[str] = (), config: RunConfig | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / "train_log.jsonl"
        self.config = config
        self.main_process = is_main_process()
        self.trackers: list[Any] = []
        self._to_start = list(report_to) if self.main_process else []
        self._restore_mlflow_uri = False
        if self._to_start:  # what can fail fails now, before any training time is spent
            check_trackers(self._to_start)
            check_tracker_folders(self._to_start, self.output_dir)
            record_files(self.output_dir, [entry for name in self._to_start for entry in tracker_entries(name)])

    def write(self, record: dict[str, Any], *, scalars: Mapping[str, float] | None = None) -> None:
        """Append `record` to the log; send its numbers, and `scalars` (trackers only, under
        `train/`), to the trackers at `record["step"]`."""
        if not self.main_process:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._to_start:
            self._start_trackers()
        if not self.trackers:
            return
        values = tracker_scalars(record) | {f"train/{key}": float(value) for key, value in (scalars or {}).items()}
        if values:
            values = {_UNSAFE.sub("_", key): value for key, value in values.items()}
            for tracker in self.trackers:
                tracker.log(values, step=record.get("step"))

    def close(self, *, failed: bool = False) -> None:
        """End the trackers' runs (an MLflow run as FAILED when `failed`), flushing what they hold."""
        trackers, self.trackers = self.trackers, []
        try:
            for tracker in trackers:
                if failed and tracker.name == "mlflow":
                    import mlflow

                    mlflow.end_run(status="FAILED")
                else:
                    tracker.finish()
        finally:
            if self._restore_mlflow_uri:
                import mlflow

                mlflow.set_tracking_uri(None)  # also unsets the MLFLOW_TRACKING_URI it set
                self._restore_mlflow_uri = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.close(failed=kind is not None)

    # -- trackers ---------------------------------------------------------------

    def _start_trackers(self) -> None:
        """Start the trackers at the first record: by then the training loop's `Accelerator`
        has set up accelerate's state, which the trackers log through."""
        from accelerate import PartialState

        names, self._to_start = self._to_start, []
        PartialState(cpu=self._on_cpu())  # no-op when the Accelerator made it already
        try:
            for name in names:
                tracker = self._tensorboard_tracker() if name == "tensorboard" else self._mlflow_tracker()
                tracker.main_process_only = False  # this process is the main one; see `is_main_process`
                tracker.start()
                self.trackers.append(tracker)
                if self.config is not None:
                    tracker.store_init_configuration(hyperparameters(self.config))
        except BaseException:
            self.close(failed=True)
            raise

    def _on_cpu(self) -> bool:
        """Whether the run trains on the CPU (what an `Accelerator(cpu=...)` for it would say)."""
        device = self.config.train.device if self.config is not None else "auto"
        return device == "cpu" or (device == "auto" and not torch.cuda.is_available())

    def _tensorboard_tracker(self) -> Any:
        from accelerate.tracking import TensorBoardTracker

        return TensorBoardTracker(TENSORBOARD_DIR, self.output_dir)

    def _mlflow_tracker(self) -> Any:
        import mlflow
        from accelerate.tracking import MLflowTracker

        artifacts = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(f"sqlite:///{(self.output_dir / MLFLOW_DB).resolve()}")
            self._restore_mlflow_uri = True
            artifacts = (self.output_dir / MLFLOW_ARTIFACTS).resolve().as_uri()  # created only if artifacts are logged
        tags = {"textheads.output_dir": str(self.output_dir.resolve())}
        return MLflowTracker(MLFLOW_EXPERIMENT, logging_dir=artifacts, run_name=self.output_dir.resolve().name, tags=tags)
