"""GoEmotions benchmark: textheads against TF-IDF and a hand-written fine-tuning recipe.

Each part runs alone and writes benchmarks/results/goemotions-PART.json;
`--table` prints every saved result side by side. The whole takes hours on 2
CPU cores, so run the parts you need:

    python benchmarks/goemotions.py --part tfidf
    python benchmarks/goemotions.py --part frozen      # textheads train, as a user runs it, twice
    python benchmarks/goemotions.py --part finetune --epochs 3
    python benchmarks/goemotions.py --part finetune --variant asl --head loss=asl
    python benchmarks/goemotions.py --part finetune --variant pool7 --model pool_layers=7
    python benchmarks/goemotions.py --part plain --epochs 3
    python benchmarks/goemotions.py --part multihead --epochs 1
    python benchmarks/goemotions.py --part multihead --epochs 1 --variant plain --train balance_heads=false
    python benchmarks/goemotions.py --part throughput [--baseline-src OLD_CHECKOUT/src]
    python benchmarks/goemotions.py --table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, key_values, load_split, require_goemotions, save, scores

FROZEN_CONFIG = """\
data:
  train: {folder}/train.jsonl
  validation: {folder}/dev.jsonl
  test: {folder}/test.jsonl
heads:
  emotions:
    kind: multilabel
    labels_file: {folder}/labels_emotions.txt
train:
  freeze: encoder
"""
"""What a user writes for "the cheap option": the frozen encoder with every other setting at
the library's defaults (which, for a frozen encoder, are the best frozen set-up measured)."""


def part_tfidf(args: argparse.Namespace) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    train_x, train_y, _ = load_split("train")
    dev_x, dev_y, _ = load_split("dev")
    test_x, test_y, _ = load_split("test")
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(C=4, max_iter=1000), n_jobs=-1)
    model.fit(vectorizer.fit_transform(train_x), train_y)
    seconds = time.perf_counter() - started
    dev_p = model.predict_proba(vectorizer.transform(dev_x))
    test_p = model.predict_proba(vectorizer.transform(test_x))
    save("goemotions-tfidf", {"method": "TF-IDF 1-2-grams + one-vs-rest logistic regression (C 4)", "train_seconds": seconds, **scores(dev_y, dev_p, test_y, test_p)})


def part_plain(args: argparse.Namespace) -> None:
    from reference_loop import train

    train_x, train_y, _ = load_split("train")
    dev_x, dev_y, _ = load_split("dev")
    test_x, test_y, _ = load_split("test")
    epochs_out = []

    def on_epoch(epoch: int, model: object, predict: object, seconds: float) -> None:
        result = {"epoch": epoch, "train_seconds": seconds, **scores(dev_y, predict(dev_x), test_y, predict(test_x))}
        epochs_out.append(result)
        print(json.dumps(result), flush=True)

    started = time.perf_counter()
    rate = train(train_x, train_y, args.epochs, on_epoch)
    save(
        "goemotions-plain",
        {
            "method": "hand-written fine-tune (BASELINES.md recipe): BCE, mean pooling, lr 8e-5/2e-3, warm-up 6 %, decay planned over 5 epochs, batch 32, max length 64",
            "epochs": epochs_out,
            "examples_per_second": rate,
            "wall_seconds": time.perf_counter() - started,
            **{k: v for k, v in epochs_out[-1].items() if k != "epoch"},
        },
    )


def _records(split: str, taxonomies: tuple[str, ...]) -> list[dict]:
    folder = require_goemotions()
    with (folder / f"{split}.jsonl").open() as handle:
        return [{k: v for k, v in json.loads(line).items() if k in ("text", *taxonomies)} for line in handle]


def _heads(taxonomies: tuple[str, ...], **options: object) -> dict:
    folder = require_goemotions()
    return {t: {"kind": "multilabel", "labels_file": str(folder / f"labels_{t}.txt"), **options} for t in taxonomies}


def _fit_and_score(name: str, method: str, heads: dict, train: dict, taxonomies: tuple[str, ...], model: dict | None = None, **extra: object) -> dict:
    """Train textheads on train.jsonl, tune on dev.jsonl, score test.jsonl with the shared scorer."""
    from textheads import TextClassifier
    from textheads.config import build_config, resolve_paths

    raw = {"model": {"max_length": 64, **(model or {})}, "heads": heads, "train": train, "output_dir": str(RESULTS.parent / "runs" / name)}
    config = resolve_paths(build_config(raw), Path("."))
    import shutil

    shutil.rmtree(config.output_dir, ignore_errors=True)
    started = time.perf_counter()
    clf = TextClassifier.from_config(config).fit(_records("train", taxonomies), _records("dev", taxonomies))
    train_seconds = time.perf_counter() - started
    result: dict = {"method": method, "train_seconds": train_seconds, "config": raw}
    for taxonomy in taxonomies:
        _, dev_y, _ = load_split("dev", taxonomy)
        _, test_y, _ = load_split("test", taxonomy)
        dev_x, test_x = [r["text"] for r in _records("dev", ())], [r["text"] for r in _records("test", ())]
        dev_p, test_p = clf.predict_proba(dev_x)[taxonomy], clf.predict_proba(test_x)[taxonomy]
        result[taxonomy] = scores(dev_y, dev_p, test_y, test_p)
    result.update(result[taxonomies[0]])
    result.update(extra)
    return save(name, result)


def part_frozen(args: argparse.Namespace) -> None:
    """(a) The frozen-encoder fast path as a user runs it: `textheads train` on FROZEN_CONFIG
    (`train: {freeze: encoder}`, nothing else), timed end to end from the shell, twice: the
    second time on the embedding cache the first one filled. Then the saved model is scored
    like the other parts (untimed)."""
    import os
    import shutil
    import subprocess

    from textheads import TextClassifier

    folder = require_goemotions()
    work = RESULTS.parent / "runs" / "frozen-cli"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / "frozen.yaml"
    config.write_text(FROZEN_CONFIG.format(folder=folder))
    env = {**os.environ, "TEXTHEADS_CACHE": str(work / "cache")}  # a fresh cache, not a config setting
    _, dev_y, _ = load_split("dev")
    _, test_y, _ = load_split("test")
    dev_x, test_x = [r["text"] for r in _records("dev", ())], [r["text"] for r in _records("test", ())]
    for run in ("first", "cached"):
        output = work / run
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "textheads", "train", str(config), "-o", str(output), "-q"], env=env, check=True)
        seconds = time.perf_counter() - started
        cli_macro_f1 = json.loads((output / "test_metrics.json").read_text())["emotions"]["macro_f1"]
        clf = TextClassifier.load(output)
        save(
            "goemotions-frozen" if run == "first" else "goemotions-frozen-cached",
            {
                "method": f"textheads frozen encoder ({run} run): `textheads train` on train: {{freeze: encoder}}, every other setting a default",
                "train_seconds": seconds,
                "cli_test_macro_f1": cli_macro_f1,
                "config": config.read_text(),
                "config_used": (output / "training_config.yaml").read_text(),
                **scores(dev_y, clf.predict_proba(dev_x)["emotions"], test_y, clf.predict_proba(test_x)["emotions"]),
            },
        )


def part_finetune(args: argparse.Namespace) -> None:
    """(b) Full fine-tuning with textheads' defaults, `--epochs` epochs; `--head`/`--train`
    options and `--variant NAME` try other recipes without touching the default result."""
    head, train, model = key_values(args.head), key_values(args.train), key_values(args.model)
    changed = ", ".join(f"{k}={v}" for k, v in {**model, **head, **train}.items())
    _fit_and_score(
        "goemotions-finetune" + (f"-{args.variant}" if args.variant else ""),
        f"textheads fine-tuning, {changed or 'defaults'}, {args.epochs} epochs, max length 64",
        _heads(("emotions",), **head),
        {"epochs": args.epochs, **train},
        ("emotions",),
        model,
    )


def part_throughput(args: argparse.Namespace) -> None:
    """Training examples/s on the same 2,560 texts: the transformers Trainer at its best CPU
    set-up (dynamic padding, grouped by length) against textheads in fp32 and in bf16, in
    one run; the default (`precision: auto`) is bf16 where the CPU has native bf16."""
    import tempfile

    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from textheads.encoder import default_encoder_path
    from textheads.training.loop import training_precision

    texts, y, labels = load_split("train")
    n = args.examples
    texts, y = texts[:n], y[:n]
    path = str(default_encoder_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoded = tokenizer(texts, truncation=True, max_length=64)
    dataset = [{"input_ids": ids, "attention_mask": mask, "labels": row.astype(np.float32).tolist()} for ids, mask, row in zip(encoded["input_ids"], encoded["attention_mask"], y, strict=True)]

    def trainer_run(bf16: bool) -> float:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels), problem_type="multi_label_classification")
        with tempfile.TemporaryDirectory() as tmp:
            training_args = TrainingArguments(
                output_dir=tmp, per_device_train_batch_size=32, num_train_epochs=1, learning_rate=5e-5,
                train_sampling_strategy="group_by_length", report_to=[], save_strategy="no", logging_strategy="no",
                use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, bf16=bf16,
            )
            trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))
            started = time.perf_counter()
            trainer.train()
            return time.perf_counter() - started

    trainer_seconds = trainer_run(bf16=False)
    trainer_bf16_seconds = trainer_run(bf16=True)

    fit_seconds, loop_seconds, bf16_seconds = _textheads_seconds(n, None)
    baseline: dict[str, float] = {}
    if args.baseline_src:  # the same loop of an older checkout, in this run (e.g. before a rewrite of the loop)
        _, old_fp32, old_bf16 = _textheads_seconds(n, args.baseline_src)
        baseline = {
            "baseline_src": args.baseline_src,
            "baseline_examples_per_second": n / old_fp32,
            "baseline_bf16_examples_per_second": n / old_bf16,
            "ratio_to_baseline": old_fp32 / loop_seconds,
            "ratio_bf16_to_baseline": old_bf16 / bf16_seconds,
        }
    default = training_precision("auto", torch.device("cpu"))
    save(
        "goemotions-throughput",
        {
            "examples": n,
            "default_precision": default,
            "ratio_default": trainer_seconds / (bf16_seconds if default == "bf16" else loop_seconds),
            "trainer_examples_per_second": n / trainer_seconds,
            "textheads_examples_per_second": n / loop_seconds,
            "textheads_fit_examples_per_second": n / fit_seconds,
            "textheads_bf16_examples_per_second": n / bf16_seconds,
            "ratio": trainer_seconds / loop_seconds,
            "ratio_whole_fit": trainer_seconds / fit_seconds,
            "ratio_bf16": trainer_seconds / bf16_seconds,
            "trainer_bf16_examples_per_second": n / trainer_bf16_seconds,
            "ratio_bf16_vs_trainer_bf16": trainer_bf16_seconds / bf16_seconds,
            **baseline,
            "note": "Trainer: AutoModelForSequenceClassification(multi_label_classification), DataCollatorWithPadding, group_by_length, batch 32, max length 64, fp32 (its default) and bf16=True; time of trainer.train(). textheads: the training loop (fit_: whole fit() with loading, tokenising and saving), each precision in its own process (benchmarks/loop_seconds.py); baseline: the same with --baseline-src on the path.",
        },
    )


def _textheads_seconds(n: int, src: str | None) -> tuple[float, float, float]:
    """(whole fit fp32, loop fp32, loop bf16) seconds of textheads on the first `n` training
    texts, each run in a fresh process with `src` (a checkout's src/) first on the path."""
    import os
    import subprocess

    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    script = str(Path(__file__).resolve().parent / "loop_seconds.py")
    runs = {}
    for precision in ("fp32", "bf16"):
        out = subprocess.run([sys.executable, script, "--examples", str(n), "--precision", precision], env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        runs[precision] = json.loads(out.strip().splitlines()[-1])
    return runs["fp32"]["fit_seconds"], runs["fp32"]["loop_seconds"], runs["bf16"]["loop_seconds"]


def part_multihead(args: argparse.Namespace) -> None:
    """One model with emotions + sentiment + ekman heads against three single-head models.

    With `--variant NAME --train key=value`, only the three-head model is trained
    again with those options (they must not change single-head training, e.g.
    `balance_heads=false`) and compared with the single-head results already saved."""
    taxonomies = ("emotions", "sentiment", "ekman")
    train = {"epochs": args.epochs, **key_values(args.train)}
    suffix = f"-{args.variant}" if args.variant else ""
    changed = "".join(f", {k}={v}" for k, v in key_values(args.train).items())
    joint = _fit_and_score(f"goemotions-multihead-joint{suffix}", f"one model, three heads, {args.epochs} epoch(s){changed}", _heads(taxonomies), train, taxonomies)
    if args.variant:
        singles = {t: RESULTS / f"goemotions-multihead-single-{t}.json" for t in taxonomies}
    else:
        singles = {t: _fit_and_score(f"goemotions-multihead-single-{t}", f"single-head model for {t}, {args.epochs} epoch(s)", _heads((t,)), train, (t,)) for t in taxonomies}
    single_seconds = sum(json.loads(path.read_text())["train_seconds"] for path in singles.values())
    joint_result = json.loads(joint.read_text())
    summary = {
        "joint_seconds": joint_result["train_seconds"],
        "single_seconds": single_seconds,
        "time_ratio": joint_result["train_seconds"] / single_seconds,
        "heads": {
            t: {
                "joint_macro_f1": joint_result[t]["macro_f1@per_label"],
                "single_macro_f1": json.loads(singles[t].read_text())[t]["macro_f1@per_label"],
            }
            for t in taxonomies
        },
    }
    save(f"goemotions-multihead{suffix}", summary)


PARTS = {"multihead": part_multihead, "throughput": part_throughput, "tfidf": part_tfidf, "plain": part_plain, "frozen": part_frozen, "finetune": part_finetune}


def print_table() -> None:
    rows = []
    for path in sorted(RESULTS.glob("goemotions-*.json")):
        result = json.loads(path.read_text())
        if "macro_f1@per_label" in result:
            rows.append(result)
    print(f"{'part':<26}{'@0.5':>8}{'@global':>9}{'@per-label':>12}{'micro@pl':>10}  time")
    for r in rows:
        seconds = r.get("wall_seconds", r.get("train_seconds", 0))
        print(f"{r['name']:<26}{r['macro_f1@0.5']:>8.3f}{r['macro_f1@global']:>9.3f}{r['macro_f1@per_label']:>12.3f}{r['micro_f1@per_label']:>10.3f}  {seconds:,.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=sorted(PARTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2560, help="texts for --part throughput")
    parser.add_argument("--baseline-src", help="--part throughput: also time the loop of this src/ folder (an older checkout), in the same run")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--variant", help="--part finetune/multihead: save under a -VARIANT name")
    parser.add_argument("--head", action="append", default=[], metavar="KEY=VALUE", help="--part finetune: head option")
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE", help="--part finetune: model option (e.g. pool_layers=7)")
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="--part finetune/multihead: train option")
    args = parser.parse_args()
    if args.part:
        PARTS[args.part](args)
    if args.table or not args.part:
        print_table()


if __name__ == "__main__":
    main()
