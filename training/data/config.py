"""The curation config (``soro data build CONFIG``); see configs/data/*.yaml.

Every threshold starts from FineWeb-2's ``tgk_Cyrl`` config (language score 0.766, duplicate-line fraction
0.291, the Tajik stop words …), so a config that names only its sources curates the way FineWeb-2 would, plus
the Tajik steps: legacy-font repair, Tajik-letter-aware language ID, +992 phone numbers, decontamination.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.config import config_to_dict, load_config

SourceKind = Literal["jsonl", "parquet", "fineweb2", "warc", "pdf", "text", "curriculum"]
# Steps a source may skip, e.g. hand-made school material that a web-text quality heuristic would misjudge.
SkippableStep = Literal["language", "quality"]

FINEWEB2_TGK_STOP_WORDS = ["дар", "ва", "аз", "ба", "ки", "аст", "соли", "бо", "деҳа", "дорад"]


@dataclass(frozen=True)
class SourceConfig:
    """One raw source. ``path`` is a local folder or any fsspec URL datatrove reads (s3://, hf://datasets/…)."""

    name: str
    kind: SourceKind
    path: str
    # Files to read under ``path``; each kind has a sensible default (``**/*.pdf`` for PDFs …).
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    # Per-task cap on documents read, for trying a config on a sample; -1 reads everything.
    limit: int = -1
    # Constant metadata for every document of this source (licence, collection …); kept in the shards.
    metadata: dict[str, str] = field(default_factory=dict)
    # Curriculum folders: the manifest, one JSON object per document with "file" and any metadata.
    manifest: str = "metadata.jsonl"
    skip_steps: list[SkippableStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"source name {self.name!r} must be a plain non-empty name (it names folders)")


@dataclass(frozen=True)
class ExtractOptions:
    # trafilatura's per-page budget; a page that takes longer is dropped (and counted) rather than stalling a task.
    html_timeout_s: float = 1.0
    favour_precision: bool = True
    # A PDF with fewer characters of text than this per page has no usable text layer (a scan): dropped, counted.
    pdf_min_chars_per_page: int = 20


@dataclass(frozen=True)
class NormaliseOptions:
    # Fix mojibake (UTF-8 read as cp1251/latin-1 …) with ftfy before the Tajik normalisation.
    fix_encoding: bool = True
    # Restore ғ ӣ қ ӯ ҳ ҷ in Tajik documents typed without them (tajik.restore, the lexicon the bot uses).
    restore_tajik_letters: bool = False


@dataclass(frozen=True)
class LanguageOptions:
    # Minimum Tajik score to keep a document (FineWeb-2 tgk_Cyrl's language_score).
    threshold: float = 0.766
    # Share of Cyrillic letters that are ғ ӣ қ ӯ ҳ ҷ at which the letters alone count as full evidence for Tajik
    # (formal Tajik has 6-8 %; Russian 0).
    letter_share_for_full_score: float = 0.04
    # The classifier reads at most this many characters of a document (evenly spread), to bound its cost.
    max_chars: int = 8000

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("language.threshold must lie in [0, 1]")
        if self.letter_share_for_full_score <= 0.0:
            raise ValueError("language.letter_share_for_full_score must be positive")


@dataclass(frozen=True)
class GopherRepetitionOptions:
    enabled: bool = True
    dup_line_frac: float = 0.291
    # FineWeb-2 turns the paragraph and character-fraction variants off (0): its duplicate-character check
    # lives in the FineWeb quality filter.
    dup_para_frac: float = 0.0
    dup_line_char_frac: float = 0.0
    dup_para_char_frac: float = 0.0
    # [n, fraction] pairs, as in FineWeb-2's language configs.
    top_n_grams: list[list[float]] = field(default_factory=lambda: [[2, 0.217], [3, 0.183], [4, 0.151]])
    dup_n_grams: list[list[float]] = field(
        default_factory=lambda: [[5, 0.151], [6, 0.142], [7, 0.133], [8, 0.122], [9, 0.113], [10, 0.103]]
    )

    def __post_init__(self) -> None:
        for pair in (*self.top_n_grams, *self.dup_n_grams):
            if len(pair) != 2 or pair[0] != int(pair[0]) or pair[0] < 1:
                raise ValueError(f"n-gram thresholds are [n, fraction] pairs with a whole n, got {pair}")


@dataclass(frozen=True)
class FineWebQualityOptions:
    enabled: bool = True
    line_punct_thr: float = 0.111
    new_line_ratio: float = 0.316
    # FineWeb-2 raised this from English FineWeb's 0.01 and disabled the short-line check (999).
    char_duplicates_ratio: float = 0.1
    short_line_thr: float = 999.0


@dataclass(frozen=True)
class GopherQualityOptions:
    enabled: bool = True
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 11
    max_non_alpha_words_ratio: float = 0.71
    stop_words: list[str] = field(default_factory=lambda: list(FINEWEB2_TGK_STOP_WORDS))
    min_stop_words: int = 2


@dataclass(frozen=True)
class QualityOptions:
    gopher_repetition: GopherRepetitionOptions = field(default_factory=GopherRepetitionOptions)
    fineweb_quality: FineWebQualityOptions = field(default_factory=FineWebQualityOptions)
    gopher_quality: GopherQualityOptions = field(default_factory=GopherQualityOptions)


@dataclass(frozen=True)
class MinhashOptions:
    """FineWeb-2's MinHash: 5-word shingles, 14 buckets of 8 hashes (documents ~75 % alike collide)."""

    enabled: bool = True
    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1


@dataclass(frozen=True)
class DedupOptions:
    # Same text after lower-casing and collapsing whitespace; across all sources. Of a set of copies the one
    # from the source listed first in ``sources`` is kept.
    exact: bool = True
    minhash: MinhashOptions = field(default_factory=MinhashOptions)


@dataclass(frozen=True)
class PiiOptions:
    enabled: bool = True
    emails: bool = True
    phones: bool = True
    ip_addresses: bool = True
    id_numbers: bool = True
    email_replacement: str = "email@example.com"
    phone_replacement: str = "+992 00 000 00 00"
    id_replacement: str = "A0000000"


@dataclass(frozen=True)
class EvalSetConfig:
    """An evaluation set whose items must not leak into training: JSONL (.gz), Parquet or plain text."""

    name: str
    path: str
    # Fields of each record that carry text (question, passage, options …); plain text files: one item a line.
    fields: list[str] = field(default_factory=lambda: ["text"])


@dataclass(frozen=True)
class DecontaminationOptions:
    eval_sets: list[EvalSetConfig] = field(default_factory=list)
    # Word n-gram length: one shared n-gram drops the document. Tajik test items are short (FLORES sentences,
    # exam questions), so 8 words, as in Llama 2's contamination study, rather than GPT-3's 13.
    n_grams: int = 8


@dataclass(frozen=True)
class OutputOptions:
    format: Literal["parquet", "jsonl.gz"] = "parquet"
    # Parquet shards roll over at this size, so one failed task never loses more than one shard of work.
    max_shard_mb: int = 1024


@dataclass(frozen=True)
class ReportOptions:
    # A local tokenizer: a folder with tokenizer.json or the file itself (e.g. Gemma 3's, saved with
    # save_pretrained). None counts whitespace-separated words, which needs no download.
    tokenizer: str | None = None
    samples_per_reason: int = 3
    sample_chars: int = 600


@dataclass(frozen=True)
class SlurmOptions:
    partition: str
    time: str = "10:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 4
    qos: str = "normal"
    # Shell lines run before each task, e.g. "source ~/soro/.venv/bin/activate".
    env_command: str | None = None
    sbatch_args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RayOptions:
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    # The cluster to run on: "auto" (the one `ray start` made on this node), "HOST:PORT" of its head, or None
    # for a private single-node Ray on 127.0.0.1 that lives as long as the command.
    address: str | None = None


@dataclass(frozen=True)
class ExecutorOptions:
    kind: Literal["local", "slurm", "ray"] = "local"
    # Tasks per stage: the input files of a stage are shared out among them (more tasks than files idle).
    tasks: int = 4
    # Local executor: tasks at a time; None = one per CPU core.
    workers: int | None = None
    slurm: SlurmOptions | None = None
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ValueError("executor.tasks must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise ValueError("executor.workers must be at least 1")
        if self.kind == "slurm" and self.slurm is None:
            raise ValueError("executor.kind 'slurm' needs an executor.slurm section (at least its partition)")


@dataclass(frozen=True)
class CurationConfig:
    # The training shards and nothing else, so a training config can name this folder as it is.
    output_dir: Path
    sources: list[SourceConfig]
    # Intermediate files, removed documents, logs and the resume state; default: <output_dir>.work beside it.
    work_dir: Path | None = None
    # report.md, report.json, language_score.png, samples.md; default: <output_dir>.report beside it.
    report_dir: Path | None = None
    extract: ExtractOptions = field(default_factory=ExtractOptions)
    normalise: NormaliseOptions = field(default_factory=NormaliseOptions)
    language: LanguageOptions = field(default_factory=LanguageOptions)
    quality: QualityOptions = field(default_factory=QualityOptions)
    dedup: DedupOptions = field(default_factory=DedupOptions)
    pii: PiiOptions = field(default_factory=PiiOptions)
    decontamination: DecontaminationOptions = field(default_factory=DecontaminationOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("sources must name at least one source")
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")

    @property
    def work(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.output_dir.with_name(f"{self.output_dir.name}.work")

    @property
    def report_folder(self) -> Path:
        if self.report_dir is not None:
            return self.report_dir
        return self.output_dir.with_name(f"{self.output_dir.name}.report")


def load_curation_config(path: str | Path, overrides: Sequence[str] = ()) -> CurationConfig:
    return load_config(path, CurationConfig, overrides=overrides)


def resume_fingerprint(config: CurationConfig) -> dict[str, Any]:
    """The parts of a config that decide what a finished task wrote; a resumed run must agree on all of them.

    Where and how tasks run (workers, Slurm or Ray settings) and how many samples the report shows change no
    task's output, so those may differ between a crashed run and its resumption.
    """
    plain = config_to_dict(config)
    plain.pop("work_dir")
    plain.pop("report_dir")
    plain["executor"] = {"tasks": config.executor.tasks}
    plain["report"] = {"tokenizer": config.report.tokenizer}
    return plain
