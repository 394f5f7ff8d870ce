"""Curation throughput: the stock FineWeb-2 pipeline on datatrove vs ours, on the same Tajik documents.

    .venv/bin/python bench/curation.py [--data ../shared/data/tajik] [--workers 1]

Stock = FineWeb-2's own pipeline (fineweb-2-pipeline.py) for tgk_Cyrl: language ID with score ≥ 0.766,
MinHash dedup (14×8, 5-grams), GopherRepetition → FineWebQuality → GopherQuality with the tgk_Cyrl thresholds
and stop words, then FTFY → PII → SymbolLines, every word split by spaCy's "xx" tokenizer as datatrove assigns
it to tgk_Cyrl. Its GlotLID step downloads a model at run time, so py3langid's ``tg`` probability stands in.
Ours = ``soro data build`` with every Tajik step: FTFY, legacy-font-aware normalisation, Tajik language ID
(model + letters + words), the same quality filters with the Tajik word splitter, exact + MinHash dedup,
Tajik PII, n-gram decontamination, token counts, Parquet shards and the report.

Both run on datatrove's local executor with the same tasks and workers, after a warm-up run of each on 50
documents (imports, models). Prints documents per second for each and their ratio, then the language-ID
precision and recall on the shared Universal Declaration.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from tajik.letters import RUSSIAN_KEYBOARD_FALLBACK

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _py3langid() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class OfflineLanguageFilter(BaseFilter):  # type: ignore[misc]  # datatrove ships no types
    """datatrove's LanguageFilter(languages=["tg"]) with py3langid in place of fastText/GlotLID."""

    name = "🌍 Language ID (py3langid)"

    def __init__(self, threshold: float, exclusion_writer: Any = None) -> None:
        super().__init__(exclusion_writer)
        self.threshold = threshold

    def filter(self, doc: Document) -> bool:
        ranked = dict(_py3langid().rank(doc.text.replace("\n", " ")))
        doc.metadata["language"] = max(ranked, key=ranked.__getitem__)
        doc.metadata["language_score"] = float(ranked.get("tg", 0.0))
        return bool(doc.metadata["language_score"] >= self.threshold)


def make_documents(data: Path, count: int, seed: int = 0) -> list[dict[str, str]]:
    """``count`` documents, roughly what a Tajik web dump mixes: 80 % Tajik (three paragraphs of the annual
    addresses, drawn at random, so nearly all differ), 5 % the declaration in Russian, Uzbek, Persian or
    English, 10 % exact copies of Tajik ones and 5 % Tajik retyped on a Russian keyboard."""
    rng = random.Random(seed)
    paragraphs = [
        p
        for path in sorted((data / "prose").glob("Payom_*.txt"))
        for p in path.read_text(encoding="utf-8").split("\n\n")
        if len(p.split()) >= 5
    ]
    foreign: list[str] = []
    for lang in ("ru", "uz_Cyrl", "uz_Latn", "fa", "en"):
        lines = (data / "langid" / f"udhr_{lang}.txt").read_text(encoding="utf-8").splitlines()
        foreign += ["\n".join(lines[i : i + 10]) for i in range(0, len(lines), 10)]
    tajik = ["\n\n".join(rng.sample(paragraphs, 3)) for _ in range(count * 80 // 100)]
    texts = (
        tajik
        + [rng.choice(foreign) for _ in range(count * 5 // 100)]
        + rng.sample(tajik, count * 10 // 100)
        + [text.translate(RUSSIAN_KEYBOARD_FALLBACK) for text in rng.sample(tajik, count * 5 // 100)]
    )
    rng.shuffle(texts)
    return [{"id": f"doc-{i:05d}", "text": text} for i, text in enumerate(texts)]


def _run(executor_factory: Callable[..., Any], stages: list[tuple[list[Any], int]], logs: Path) -> None:
    for i, (pipeline, tasks) in enumerate(stages):
        executor_factory(pipeline=pipeline, tasks=tasks, logging_dir=str(logs / f"{i:02d}")).run()


def run_stock(input_dir: Path, work: Path, workers: int, tasks: int) -> int:
    """FineWeb-2's stages for one language, chained as in fineweb-2-pipeline.py; returns documents out."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    from training.data.config import QualityOptions
    from training.data.quality import quality_filters

    language = "tgk_Cyrl"  # datatrove's word tokenizer for Tajik: spaCy "xx"
    minhash = MinhashConfig(
        hash_config=HashConfig(hash_fc="xxhash", precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5
    )
    lang_out, mh, filtered, final = (work / name for name in ("lang", "minhash", "filtered", "final"))
    filters = [
        f
        for _, f in quality_filters(QualityOptions(), language, lambda step: JsonlWriter(str(work / "removed" / step)))
    ]
    stages: list[tuple[list[Any], int]] = [
        ([JsonlReader(str(input_dir)), OfflineLanguageFilter(0.766), JsonlWriter(str(lang_out))], tasks),
        ([JsonlReader(str(lang_out)), MinhashDedupSignature(str(mh / "sigs"), minhash, language=language)], tasks),
        ([MinhashDedupBuckets(str(mh / "sigs"), str(mh / "buckets"), config=minhash)], minhash.num_buckets),
        ([MinhashDedupCluster(str(mh / "buckets"), str(mh / "remove"), config=minhash, save_cluster_size=True)], 1),
        ([JsonlReader(str(lang_out)), MinhashDedupFilter(str(mh / "remove")), JsonlWriter(str(mh / "out"))], tasks),
        ([JsonlReader(str(mh / "out")), *filters, JsonlWriter(str(filtered))], tasks),
        (
            [
                JsonlReader(str(filtered)),
                FTFYFormatter(),
                PIIFormatter(),
                SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
                JsonlWriter(str(final)),
            ],
            tasks,
        ),
    ]
    _run(functools.partial(LocalPipelineExecutor, workers=workers), stages, work / "logs")
    return sum(1 for path in final.glob("*.jsonl.gz") for _ in _lines(path))


def _lines(path: Path) -> list[str]:
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as stream:
        return stream.readlines()


def run_ours(input_dir: Path, eval_file: Path, work: Path, workers: int, tasks: int) -> int:
    from rich.console import Console

    from training.config import config_from_dict
    from training.data.build import build_corpus
    from training.data.config import CurationConfig

    config = config_from_dict(
        {
            "output_dir": str(work / "shards"),
            "sources": [{"name": "web", "kind": "jsonl", "path": str(input_dir)}],
            "decontamination": {"eval_sets": [{"name": "bench", "path": str(eval_file), "fields": ["text"]}]},
            "executor": {"tasks": tasks, "workers": workers},
        },
        CurationConfig,
    )
    result = build_corpus(config, console=Console(quiet=True))
    assert result.report is not None
    return sum(source.docs_out for source in result.report.sources)


LANGID_SETS = {
    "tg": "tg",
    "tg typed on a Russian keyboard": "tg",
    "ru": "ru",
    "uz_Cyrl": "uz",
    "uz_Latn": "uz",
    "fa": "fa",
    "en": "en",
}


def langid_table(data: Path, min_words: int) -> list[str]:
    """Precision and recall of our language ID per language on the Universal Declaration, line by line."""
    from training.data.config import LanguageOptions
    from training.data.langid import identify

    options = LanguageOptions()
    predictions: list[tuple[str, str]] = []  # (true language, predicted language)
    for name, truth in LANGID_SETS.items():
        file = data / "langid" / f"udhr_{'tg' if truth == 'tg' else name}.txt"
        lines = [
            line for line in file.read_text(encoding="utf-8").splitlines() if len(line.split()) >= max(min_words, 1)
        ]
        if name != "tg" and truth == "tg":
            lines = [line.translate(RUSSIAN_KEYBOARD_FALLBACK) for line in lines]
        for line in lines:
            guess = identify(
                line,
                threshold=options.threshold,
                letter_share_for_full_score=options.letter_share_for_full_score,
                max_chars=options.max_chars,
            )
            predictions.append((truth, guess.language))
    rows = ["| language | lines | precision | recall |", "|---|---:|---:|---:|"]
    for language in dict.fromkeys(LANGID_SETS.values()):
        true_positive = sum(1 for truth, guess in predictions if truth == language and guess == language)
        predicted = sum(1 for _, guess in predictions if guess == language)
        actual = sum(1 for truth, _ in predictions if truth == language)
        precision = true_positive / predicted if predicted else 0.0
        rows.append(f"| {language} | {actual} | {precision:.3f} | {true_positive / actual:.3f} |")
    return rows


def _time_both(root: Path, eval_file: Path, workers: int, tasks: int) -> dict[str, tuple[float, int]]:
    def runs(inputs: Path, out: Path) -> dict[str, Callable[[], int]]:
        return {
            "stock FineWeb-2 (datatrove)": lambda: run_stock(inputs, out / "stock", workers, tasks),
            "ours (soro data build)": lambda: run_ours(inputs, eval_file, out / "ours", workers, tasks),
        }

    # A warm-up run of each on a few documents first: imports, models and datatrove's dependency checks are
    # paid once per process, not per document, and neither pipeline should pay them for the other.
    for run in runs(root / "warm-up-input", root / "warm-up").values():
        run()
    timings: dict[str, tuple[float, int]] = {}
    for name, run in runs(root / "input", root).items():
        started = time.perf_counter()
        kept = run()
        timings[name] = (time.perf_counter() - started, kept)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "tajik")
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=2)
    args = parser.parse_args()

    docs = make_documents(args.data, args.docs)
    with tempfile.TemporaryDirectory(prefix="soro-bench-curation-") as tmp:
        root = Path(tmp)
        (root / "input").mkdir()
        for part in range(args.tasks):
            with (root / "input" / f"part-{part:02d}.jsonl").open("w", encoding="utf-8") as stream:
                stream.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs[part :: args.tasks])
        (root / "warm-up-input").mkdir()
        warm_up = (json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs[:50])
        (root / "warm-up-input" / "part-00.jsonl").write_text("".join(warm_up), encoding="utf-8")
        eval_file = root / "eval.jsonl"
        eval_file.write_text(json.dumps({"text": docs[0]["text"][:400]}, ensure_ascii=False) + "\n", encoding="utf-8")

        from training.data.progress import output_to

        # datatrove's log lines go to a file for both, as `soro data build` does.
        with output_to(root / "console.log"):
            timings = _time_both(root, eval_file, args.workers, args.tasks)

    print(f"{len(docs)} documents in, {args.tasks} tasks, {args.workers} worker(s)\n")
    print("| pipeline | seconds | docs/s | docs out |\n|---|---:|---:|---:|")
    for name, (seconds, kept) in timings.items():
        print(f"| {name} | {seconds:.1f} | {len(docs) / seconds:.1f} | {kept} |")
    (stock_s, _), (ours_s, _) = timings.values()
    print(f"\nratio ours/stock (docs/s): {stock_s / ours_s:.2f}")
    for min_words, what in ((4, "paragraphs of four words or more"), (0, "every line, headings included")):
        print(f"\nLanguage ID on the Universal Declaration, {what} (tg counts the retyped copy too):\n")
        print("\n".join(langid_table(args.data, min_words)))


if __name__ == "__main__":
    main()
