"""`TextClassifier`: the Python API — fit, predict, predict_proba, evaluate, save, load."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textheads import __version__
from textheads.card import read_card_sources, write_card_sources, write_model_card
from textheads.config import RunConfig, TrainSection, build_config, dump_config
from textheads.data.dataset import LabelledData, Source, check_text_file, iter_text_chunks, load_texts
from textheads.data.prepare import load_run_data, load_split
from textheads.data.summary import TRAINING_DATA, source_name, split_summary
from textheads.decisions import decide
from textheads.errors import ConfigError, DataError, NotFittedError
from textheads.evaluation import evaluate_outputs
from textheads.export.samples import choose_sample, read_sample_texts, write_sample_texts
from textheads.inference.backends import Backend, TorchBackend, load_backend
from textheads.inference.predict import Predictions, predict_outputs, to_records
from textheads.inference.resumable import input_identity, model_identity, resumable_output
from textheads.inference.windows import Truncation
from textheads.io import write_json_atomic, write_text_atomic
from textheads.losses import resolve_auto_weights
from textheads.model import TextHeadsModel, build_model
from textheads.model_config import long_text_of, run_config_for, used_run_config
from textheads.ownership import check_output_file, record_files
from textheads.progress import progress
from textheads.saving import load_model_dir, save_model_dir
from textheads.specs import HeadSpec
from textheads.thresholds import tuned_spec
from textheads.training import TrainResult, distributed
from textheads.training.checkpoint import seed_everything
from textheads.training.run import train_model
from textheads.training.run_folder import data_digest, open_run_folder
from textheads.training.run_log import RunLog, check_tracker_folders, check_trackers, thresholds_record


class TextClassifier:
    """Several heads (multilabel, multiclass, regression) on one shared encoder.

    Example:
        >>> clf = TextClassifier(
        ...     heads={"topics": {"kind": "multilabel", "separator": ","},
        ...            "level": {"kind": "multiclass"}},
        ...     train={"epochs": 2},
        ... )  # doctest: +SKIP
        >>> clf.fit("train.jsonl", validation="dev.jsonl")  # doctest: +SKIP
        >>> clf.predict(["Learn Python first."])  # doctest: +SKIP
        [{'topics': ['programming'], 'level': 'junior'}]
    """

    def __init__(
        self,
        heads: Mapping[str, Mapping[str, Any] | HeadSpec],
        *,
        encoder: str = "default",
        pooling: str = "mean",
        max_length: int = 128,
        long_text: str = "truncate",
        text: str | list[str] = "text",
        text_separator: str = "\n",
        validation_split: float = 0.1,
        train: Mapping[str, Any] | TrainSection | None = None,
        output_dir: str | Path | None = None,
    ) -> None:
        raw_heads = {
            # Only what was set: a default that depends on the encoder being frozen is filled below.
            name: spec.model_dump(exclude={"name"}, exclude_unset=True) if isinstance(spec, HeadSpec) else dict(spec)
            for name, spec in heads.items()
        }
        raw_train = train.model_dump(exclude_unset=True) if isinstance(train, TrainSection) else dict(train or {})
        self.config = build_config(
            {
                "model": {"encoder": encoder, "pooling": pooling, "max_length": max_length, "long_text": long_text},
                "data": {"text": text, "text_separator": text_separator, "validation_split": validation_split},
                "heads": raw_heads,
                "train": raw_train,
                "output_dir": str(output_dir) if output_dir is not None else None,
            },
            source="TextClassifier",
        )
        self.model_: TextHeadsModel | None = None
        self.backend_: Backend | None = None
        self.tokenizer_: Any = None
        self.train_result_: TrainResult | None = None
        self.sample_texts_: list[str] | None = None
        """Up to 512 validation texts kept from `fit` (or a loaded model), to check int8 exports on."""
        self._embedding_cache: Path | None = None
        """After `fit` on the frozen path: where its pooled vectors are cached, for `evaluate`."""
        self.truncation_: Truncation | None = None
        """How many texts the last `predict*` or `evaluate` call could not read whole (see
        `truncation_line`)."""
        self._card_sources: tuple[Path, dict[str, str]] | None = None
        """The folder the model was trained in or loaded from, and its files the model card
        reads (metrics, data summary, config), carried to a folder `save` writes elsewhere."""

    @classmethod
    def from_config(cls, config: RunConfig) -> TextClassifier:
        """A classifier for a validated run config (as read by `load_config`)."""
        clf = cls.__new__(cls)
        clf.config, clf.model_, clf.backend_, clf.tokenizer_, clf.train_result_ = config, None, None, None, None
        clf.sample_texts_, clf._embedding_cache = None, None
        clf.truncation_, clf._card_sources = None, None
        return clf

    # -- training ---------------------------------------------------------------

    def fit(
        self,
        train: Source | None = None,
        validation: Source | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        show_progress: bool = True,
        echo: Any = print,
    ) -> TextClassifier:
        """Train on `train` (a file path or a list of records), pick the best model on
        `validation`, and keep it. Files default to the config's `data` section.

        The model is written to the config's `output_dir` (a temporary folder when it has
        none), which must be new, empty, or an earlier textheads run: `resume` continues
        that run from its last checkpoint (with the same settings and data), `overwrite`
        replaces it; a folder that textheads did not write is never touched.
        """
        config = self.config
        check_trackers(config.train.report_to)  # before any time is spent
        distributed.process_state(config.train.device)  # under a launcher: which process this is
        if not distributed.is_main_process():
            echo, show_progress = _silent, False  # the main process speaks for the run
        data = load_run_data(config, train, validation)
        train_data, validation_data, specs = data.train, data.validation, data.specs
        validation_source = ""
        if data.held_out:
            assert validation_data is not None
            echo(f"No validation data given: holding out {len(validation_data)} of {len(train_data) + len(validation_data)} training rows (stratified)")
            if data.too_few_to_split:
                echo(f"Too few examples to validate (fewer than 2): {', '.join(data.too_few_to_split)}")
            validation_source = f"{source_name(train_data.source)}, rows held out"
        elif validation_data is not None:
            validation_source = validation_data.source
        specs = [resolve_auto_weights(s, train_data.targets[s.name].values, train_data.targets[s.name].mask) for s in specs]
        data_summary = {"train": split_summary(train_data, specs, source=train_data.source)}
        if validation_data is not None:
            data_summary["validation"] = split_summary(validation_data, specs, source=validation_source)
        digests = {"train": data_digest(train_data), **({"validation": data_digest(validation_data)} if validation_data is not None else {})}

        run_config = config.model_copy(update={"heads": {s.name: s for s in specs}})
        seed_everything(config.train.seed)  # before the heads are initialised
        model, tokenizer = build_model(run_config, specs, train_data)  # config errors before any file is written
        run_config = used_run_config(run_config, model.config)
        temporary = config.output_dir is None
        if temporary and distributed.num_processes() > 1:
            raise ConfigError("training in several processes needs an output_dir that they share (--output-dir)")
        output_dir = Path(tempfile.mkdtemp(prefix="textheads-")) if temporary else Path(config.output_dir)
        run_config = run_config.model_copy(update={"output_dir": str(output_dir)})
        check_tracker_folders(config.train.report_to, output_dir)  # before --overwrite removes anything
        # Kept to check int8 exports against the fp32 model (textheads.export.quantize).
        self.sample_texts_ = choose_sample((validation_data if validation_data is not None else train_data).texts, config.train.seed)
        try:
            with open_run_folder(output_dir, run_config, digests, resume=resume, overwrite=overwrite, echo=echo):
                self._train(model, tokenizer, run_config, train_data, validation_data, data_summary, resume=resume, show_progress=show_progress, echo=echo)
        finally:
            if temporary:
                shutil.rmtree(output_dir, ignore_errors=True)
        return self

    def _train(
        self,
        model: TextHeadsModel,
        tokenizer: Any,
        run_config: RunConfig,
        train_data: LabelledData,
        validation_data: LabelledData | None,
        data_summary: dict[str, Any],
        *,
        resume: bool,
        show_progress: bool,
        echo: Any,
    ) -> None:
        """Train into the prepared `run_config.output_dir`, load the best model, tune thresholds
        and write the model card (the main process; the others load the model it wrote)."""
        output_dir = Path(run_config.output_dir or ".")
        main = distributed.is_main_process()
        if main:
            write_text_atomic(output_dir / "training_config.yaml", dump_config(run_config))
            write_sample_texts(output_dir, self.sample_texts_)
            write_json_atomic(output_dir / TRAINING_DATA, data_summary)
            record_files(output_dir, [TRAINING_DATA])
        with RunLog(output_dir, run_config.train.report_to, run_config) as run_log:
            outcome = train_model(model, tokenizer, run_config, train_data, validation_data, resume=resume, show_progress=show_progress, echo=echo, run_log=run_log)
            self.train_result_ = outcome.result
            self._embedding_cache = outcome.embedding_cache
            if main:
                self.model_, self.tokenizer_ = load_model_dir(output_dir)
                self.backend_ = TorchBackend(self.model_)
                if validation_data is not None and self._tune_thresholds(validation_data, echo, outcome.validation_outputs, show_progress=show_progress):
                    save_model_dir(self.model_, self.tokenizer_, output_dir)
                record = thresholds_record(self.backend_.specs, self.train_result_.global_step)
                if record is not None:
                    run_log.write(record)
                write_model_card(output_dir, echo=echo)
                self._card_sources = (output_dir, read_card_sources(output_dir))
        distributed.wait_for_everyone()  # the model folder is final
        if not main:
            self.model_, self.tokenizer_ = load_model_dir(output_dir)
            self.backend_ = TorchBackend(self.model_)

    def _tune_thresholds(self, validation: LabelledData, echo: Any, outputs: dict[str, np.ndarray] | None = None, *, show_progress: bool = False) -> bool:
        """Tune per-label thresholds of multilabel heads on validation data (predicted now
        unless `outputs` holds the fitted model's predictions already); True if any changed."""
        backend, tokenizer = self._fitted()
        heads = [s for s in backend.specs.values() if s.kind == "multilabel" and s.tune_thresholds]
        if not heads:
            return False
        if outputs is None:
            outputs = predict_outputs(backend, tokenizer, validation.texts, show_progress=show_progress).outputs
        specs = dict(backend.specs)
        for spec in heads:
            target = validation.targets[spec.name]
            if not target.mask.any():
                continue
            specs[spec.name], untuned = tuned_spec(spec, target.values[target.mask].astype(np.int64), outputs[spec.name][target.mask])
            if untuned:
                echo(f"{spec.name}: too few validation positives to tune {', '.join(untuned)} alone; they use the global threshold")
        backend.specs = specs
        return True

    # -- inference --------------------------------------------------------------

    @property
    def heads_(self) -> dict[str, HeadSpec]:
        """The fitted heads' specs, with their labels and thresholds."""
        return self._fitted()[0].specs

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Per head: (n, labels) sigmoid probabilities (multilabel), (n, classes) softmax
        probabilities (multiclass), or (n,) values in the target's units (regression)."""
        return self._predict(texts, batch_size).outputs

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[dict[str, Any]]:
        """Per text and head: the labels over their thresholds, the chosen class, or the value."""
        predictions = self._predict(texts, batch_size)
        specs = self.heads_
        return [
            {name: decide(spec, predictions.outputs[name][row]) for name, spec in specs.items()}
            for row in range(len(texts))
        ]

    def _predict(self, texts: Sequence[str], batch_size: int, *, show_progress: bool = False) -> Predictions:
        backend, tokenizer = self._fitted()
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"text {i} is {'empty' if isinstance(text, str) else type(text).__name__}; expected a non-empty string")
        predictions = predict_outputs(backend, tokenizer, texts, batch_size=batch_size, show_progress=show_progress)
        self.truncation_ = Truncation()
        self.truncation_.add(predictions.truncated, predictions.unread)
        return predictions

    def evaluate(self, data: Source, *, batch_size: int = 64, show_progress: bool = False, report: str | Path | None = None) -> dict[str, dict[str, Any]]:
        """Metrics per head on a labelled file or list of records (see docs/metrics).

        `report`: also write an HTML page of these metrics with curves, calibration and the
        worst errors (`textheads.reports.evaluation`); it may replace only an earlier report.

        Example:
            >>> clf.evaluate("test.jsonl", report="report.html")["topics"]["micro_f1"]  # doctest: +SKIP
            0.87
        """
        backend, _ = self._fitted()
        model_dir = Path(self.config.output_dir) if self.config.output_dir else None
        if report is not None:
            inputs = [Path(data)] if isinstance(data, (str, Path)) else []
            check_output_file(Path(report), kind="report", option="report", inputs=inputs, model_dir=model_dir)
        labelled, _ = load_split(self.config.data, data, list(backend.specs.values()), "test")
        outputs = self._evaluation_outputs(labelled, batch_size=batch_size, show_progress=show_progress)
        metrics = evaluate_outputs(backend.specs, outputs, labelled)
        if report is not None:
            from textheads.reports.evaluation import Evaluated, write_evaluation_report

            data_name = str(data) if isinstance(data, (str, Path)) else f"{len(labelled)} records"
            model = str(model_dir) if model_dir is not None else "a model fitted in this session"
            write_evaluation_report(Path(report), Evaluated(dict(backend.specs), outputs, labelled, metrics), model=model, data_name=data_name, model_dir=model_dir)
        return metrics

    def _evaluation_outputs(self, labelled: LabelledData, *, batch_size: int, show_progress: bool) -> dict[str, np.ndarray]:
        backend, tokenizer = self._fitted()
        if self._embedding_cache is not None and self.model_ is not None:
            # Fitted on a frozen encoder: the texts it has seen (a second run's test file) are not
            # encoded again. (Cached vectors carry no truncation counts: `truncation_` stays unset.)
            from textheads.training.frozen import cached_predictions

            self.truncation_ = None
            return cached_predictions(self.model_, tokenizer, labelled.texts, cache_dir=self._embedding_cache, show_progress=show_progress)
        predictions = predict_outputs(backend, tokenizer, labelled.texts, batch_size=batch_size, show_progress=show_progress)
        self.truncation_ = Truncation()
        self.truncation_.add(predictions.truncated, predictions.unread)
        return predictions.outputs

    def truncation_line(self) -> str | None:
        """What the last `predict*` or `evaluate` call could not read, as one sentence (None before
        any), e.g. `37 of 500 texts were longer than 128 tokens (their end was cut); on average
        41% of their tokens were not read`."""
        if self.truncation_ is None or self.backend_ is None:
            return None
        return self.truncation_.line(self.backend_.max_length, long_text_of(self.backend_.config))

    def predict_records(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> list[dict[str, Any]]:
        """One JSON-ready record per text: every head's probabilities (or value) and decision,
        and whether the text was truncated."""
        predictions = self._predict(texts, batch_size, show_progress=show_progress)
        return to_records(self.heads_, predictions, texts)

    def iter_file_records(
        self, source: str | Path, *, batch_size: int = 64, chunk_size: int = 4096, show_progress: bool = False, start: int = 0
    ) -> Iterator[dict[str, Any]]:
        """`predict_records` for every text of a file of any size, read and predicted chunk
        by chunk (one chunk held at a time), in file order. The whole file is checked before
        the first record.

        `start` skips the file's first rows (a resumed run); the chunk it falls in is still
        predicted whole, so every record is the one an uninterrupted run gives.
        """
        data = self.config.data
        total = check_text_file(source, data.text_columns, data.text_separator)  # every row, before any prediction
        return self._checked_file_records(source, total, batch_size=batch_size, chunk_size=chunk_size, show_progress=show_progress, start=start)

    def _checked_file_records(
        self, source: str | Path, total: int, *, batch_size: int, chunk_size: int, show_progress: bool, start: int
    ) -> Iterator[dict[str, Any]]:
        """`iter_file_records` for a file of `total` rows, checked already."""
        backend, tokenizer = self._fitted()
        data = self.config.data
        if start > total:
            raise DataError(f"cannot start after row {start}: the file has {total} rows", path=str(source))
        row = start - start % chunk_size
        self.truncation_ = Truncation()
        with progress(total, "Predicting file", enabled=show_progress, unit="rows", completed=start) as advance:
            for texts in iter_text_chunks(source, data.text_columns, data.text_separator, chunk_size, checked=True, start=row):
                skip, row = max(start - row, 0), row + len(texts)
                predictions = predict_outputs(backend, tokenizer, texts, batch_size=batch_size, show_progress=show_progress)
                unread = predictions.unread[skip:] if predictions.unread is not None else None
                self.truncation_.add(predictions.truncated[skip:], unread)
                yield from to_records(backend.specs, predictions, texts)[skip:]
                advance(len(texts) - skip)

    def predict_file_to_jsonl(
        self,
        source: str | Path,
        output: str | Path,
        *,
        batch_size: int = 64,
        chunk_size: int = 4096,
        show_progress: bool = False,
        resume: bool = False,
    ) -> tuple[int, int]:
        """Predict every text of a file of any size into a JSONL file, chunk by chunk, in
        constant memory.

        The output appears (atomically) only once complete; it may not be the input file.
        Until then it grows in `.OUTPUT.partial`, which an interrupted run leaves behind:
        `resume` continues it after its last complete row, when it belongs to the same
        input, model and batching (see `textheads.inference.resumable`).
        Returns (texts, truncated) of the whole output.
        """
        output, source = Path(output), Path(source)
        check_output_file(output, kind="predictions", inputs=[source])
        output.parent.mkdir(parents=True, exist_ok=True)
        data = self.config.data
        total = check_text_file(source, data.text_columns, data.text_separator)  # a bad row fails before a partial is made
        settings = {
            "version": __version__,
            "input": input_identity(source),
            "model": model_identity(self._fitted()[0]),
            "batch_size": batch_size,
            "chunk_size": chunk_size,
        }
        with resumable_output(output, settings, resume=resume) as (handle, kept):
            count, truncated = kept.rows, kept.truncated
            records = self._checked_file_records(source, total, batch_size=batch_size, chunk_size=chunk_size, show_progress=show_progress, start=kept.rows)
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
                truncated += record["truncated"]
        if self.truncation_ is not None:
            self.truncation_.add_cut(kept.rows, kept.truncated)  # rows of a resumed run: flags only
        return count, truncated

    def predict_file(self, source: Source, *, batch_size: int = 64, show_progress: bool = True) -> list[dict[str, Any]]:
        """`predict_records` for the texts of a file (or list of records), read with the
        model's text columns."""
        texts = load_texts(source, self.config.data.text_columns, self.config.data.text_separator)
        return self.predict_records(texts, batch_size=batch_size, show_progress=show_progress)

    # -- persistence ------------------------------------------------------------

    def save(self, path: str | Path, *, echo: Any = print) -> None:
        """Write the model directory (config.json, model.safetensors, tokenizer files) and its
        model card, README.md (a README.md written or edited by hand is kept, with a line to `echo`)."""
        self._fitted()
        if self.model_ is None:
            raise ConfigError("this classifier runs an ONNX export; save the PyTorch model directory it came from instead")
        save_model_dir(self.model_, self.tokenizer_, path)
        if self.sample_texts_:
            write_sample_texts(path, self.sample_texts_)
        if self._card_sources is not None and self._card_sources[0].resolve() != Path(path).resolve():
            write_card_sources(path, self._card_sources[1])
        write_model_card(path, echo=echo)

    def export_onnx(
        self,
        path: str | Path,
        *,
        quantize: str | None = None,
        min_agreement: float = 0.99,
        calibration: str | Path | Sequence[str] | None = None,
        force: bool = False,
        echo: Any = print,
    ) -> Path:
        """Save, then export to ONNX (see `textheads.export.export_onnx`); an int8 export is
        checked on the sample texts kept from `fit` (or stored with a loaded model)."""
        from textheads.export import export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            self.save(tmp, echo=echo)
            return export_onnx(tmp, path, quantize=quantize, min_agreement=min_agreement, calibration=calibration, force=force, echo=echo)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        revision: str | None = None,
        token: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
    ) -> TextClassifier:
        """Load a model directory written by `save` or `textheads train`, or an ONNX export
        written by `textheads export` (then run by ONNX Runtime), from a local path or by
        Hugging Face Hub id (`org/name`; a local path of that name wins).

        A Hub id is fetched into the Hugging Face cache (HF_HOME, HF_HUB_CACHE) at `revision`
        (a branch, tag or commit; default `main`), with `token` or else HF_TOKEN or the stored
        login; under HF_HUB_OFFLINE=1 from the cache alone (see `textheads.hub.download`).

        `device`: `cpu`, `cuda`, `cuda:N`, or `auto` (a CUDA GPU when there is one, else the
        CPU); a device this machine lacks is a `DeviceError`. `precision`: `fp32`, `fp16`,
        `bf16` (autocast; the weights stay fp32), or `auto` (fp16 on a CUDA GPU, fp32 on
        the CPU). An ONNX export runs in the precision it was exported in, on the CUDA
        execution provider when `onnxruntime-gpu` is installed and the device is a GPU.
        `threads` caps the CPU threads of the model (PyTorch's, or ONNX Runtime's session).

        Example:
            >>> clf = TextClassifier.load("runs/advice", device="cuda", precision="bf16")  # doctest: +SKIP
            >>> clf = TextClassifier.load("my-org/support-tickets", revision="v2")  # doctest: +SKIP
        """
        from textheads.hub.download import resolve_model

        path = resolve_model(path, revision=revision, token=token)
        backend, tokenizer, model = load_backend(path, device=device, precision=precision, threads=threads)
        clf = cls.from_config(run_config_for(backend.config, max_length=backend.max_length, output_dir=path))
        clf.model_, clf.backend_, clf.tokenizer_ = model, backend, tokenizer
        clf.sample_texts_ = read_sample_texts(path)  # carried on by `save`, used by `export_onnx`
        clf._card_sources = (Path(path), read_card_sources(path))
        return clf

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        private: bool = False,
        commit_message: str | None = None,
        token: str | None = None,
        with_sample_texts: bool = False,
    ) -> str:
        """Save to a temporary folder, then upload it to the Hugging Face Hub model repo
        `repo_id` (created when missing, private when `private`) on branch `revision`
        (default `main`); returns the repo's URL. The token is `token`, else HF_TOKEN or the
        stored login. What is sent: see `textheads.hub.upload` (the sample validation texts
        only with `with_sample_texts`).

        Example:
            >>> clf.push_to_hub("my-org/support-tickets", private=True)  # doctest: +SKIP
            'https://huggingface.co/my-org/support-tickets'
        """
        from textheads.hub.upload import check_repo_id, push_folder

        check_repo_id(repo_id)  # before the save
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / repo_id.replace("/", "--")  # the default commit message names it
            self.save(folder)
            return push_folder(
                folder, repo_id, revision=revision, private=private, commit_message=commit_message, token=token,
                with_sample_texts=with_sample_texts,
            )

    def set_thresholds(self, head: str, thresholds: float | Mapping[str, float]) -> None:
        """Override a multilabel head's decision thresholds: one value for every label, or
        some labels' values (the other labels keep theirs). Each lies in [0, 1]."""
        backend, _ = self._fitted()
        specs = dict(backend.specs)
        if head not in specs:
            raise ConfigError(f"no head named {head!r}; heads are {sorted(specs)}")
        specs[head] = specs[head].with_thresholds(thresholds)
        backend.specs = specs

    def _fitted(self) -> tuple[Backend, Any]:
        if self.backend_ is None:
            raise NotFittedError("This TextClassifier is not fitted yet; call fit() or TextClassifier.load() first.")
        return self.backend_, self.tokenizer_


def _silent(_: str) -> None:
    """The echo of processes other than the main one."""
