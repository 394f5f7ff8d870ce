"""The curation run as datatrove stages: one per source, then the cross-source ones.

    prepare-<source>   read → extract → normalise → language → quality filters → work/prepared/<source>/
    exact-signatures   hash each prepared document
    exact-duplicates   find equal hashes across all sources (one task)
    minhash-signatures MinHash signatures of what is left
    minhash-buckets    candidate pairs, one task per bucket
    minhash-clusters   duplicate clusters (one task)
    decont-index       n-gram index of the evaluation sets (one task)
    finalise           drop exact and near duplicates → PII → decontamination → tokens → shards

Each stage is one datatrove executor with its own logging folder; a finished task leaves a completion marker
there, so a rerun after a crash skips every finished task and redoes only the unfinished ones. The
cross-source stages read the prepared files in the same order with the same number of tasks, which is what
lets the dedup filters find a document again by its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from training.data.config import CurationConfig, SourceConfig
from training.data.tally import Tally

# Checkpoints in pipeline order; the report's per-step rows go from one to the next.
PREPARE_CHECKPOINTS = (
    "read",
    "extract",
    "normalise",
    "language",
    "gopher_repetition",
    "fineweb_quality",
    "gopher_quality",
)
FINALISE_CHECKPOINTS = ("prepared", "exact_dedup", "near_dedup", "pii", "decontamination", "output")


@dataclass(frozen=True)
class Layout:
    """Where a run keeps its files: shards, report and work in three folders, so the shard folder holds shards
    only and a training run can read it whole."""

    shards: Path
    report: Path
    work: Path

    @property
    def prepared(self) -> Path:
        return self.work / "prepared"

    @property
    def removed(self) -> Path:
        return self.work / "removed"

    @property
    def console_log(self) -> Path:
        return self.work / "logs" / "console.log"

    def logs(self, stage: str) -> Path:
        return self.work / "logs" / stage

    def scratch(self, name: str) -> Path:
        return self.work / "scratch" / name


@dataclass(frozen=True)
class Stage:
    slug: str
    title: str
    pipeline: list[PipelineStep]
    tasks: int
    # The source a prepare stage reads; None for the cross-source stages.
    source: str | None = None


def layout_of(config: CurationConfig) -> Layout:
    return Layout(config.output_dir, config.report_folder, config.work)


def _removed_writer(layout: Layout, step: str) -> DiskWriter:
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(str(layout.removed / step), output_filename="${source}/${rank}.jsonl.gz")


def _prepare_stage(config: CurationConfig, source: SourceConfig, layout: Layout) -> Stage:
    from datatrove.pipeline.formatters import FTFYFormatter
    from datatrove.pipeline.writers import JsonlWriter

    from training.data.langid import TajikLanguageFilter
    from training.data.normalise import TajikNormalizer
    from training.data.quality import quality_filters
    from training.data.sources import source_steps
    from training.data.words import TajikWordTokenizer

    reader, *extractors = source_steps(source, config.extract)
    pipeline: list[PipelineStep] = [reader, Tally("read")]
    for extractor in extractors:
        pipeline += [extractor, Tally("extract")]
    if config.normalise.fix_encoding:
        pipeline.append(FTFYFormatter())
    pipeline += [TajikNormalizer(), Tally("normalise")]
    if config.normalise.restore_tajik_letters:
        from training.data.restoration import TajikLetterRestorer

        pipeline.append(TajikLetterRestorer())
    if "language" not in source.skip_steps:
        language = config.language
        pipeline += [
            TajikLanguageFilter(
                threshold=language.threshold,
                letter_share_for_full_score=language.letter_share_for_full_score,
                max_chars=language.max_chars,
                exclusion_writer=_removed_writer(layout, "language"),
            ),
            Tally("language"),
        ]
    if "quality" not in source.skip_steps:
        for step, quality_filter in quality_filters(
            config.quality, TajikWordTokenizer(), lambda step: _removed_writer(layout, step)
        ):
            pipeline += [quality_filter, Tally(step)]
    pipeline.append(JsonlWriter(str(layout.prepared / source.name), output_filename="${rank}.jsonl.gz"))
    return Stage(f"prepare-{source.name}", f"prepare {source.name}", pipeline, config.executor.tasks, source.name)


def _source_priority(priorities: dict[str, int], document: Document) -> int:
    """Of exact copies, the one from the source listed first in the config survives."""
    return priorities.get(str(document.metadata.get("source", "")), 1)


def _dedup_key(document: Document) -> str:
    """Exact duplicates: the same words, whatever the case and the spacing."""
    return " ".join(document.text.lower().split())


def build_stages(config: CurationConfig) -> list[Stage]:
    import functools

    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.utils.hashing import HashConfig

    from training.data.decontamination import EvalSetIndexer
    from training.data.output import shard_writer
    from training.data.pii import TajikPIIFormatter
    from training.data.tokens import TokenCounter
    from training.data.words import TajikWordTokenizer

    layout = layout_of(config)
    tasks = config.executor.tasks
    words = TajikWordTokenizer()
    stages = [_prepare_stage(config, source, layout) for source in config.sources]

    def prepared() -> JsonlReader:
        return JsonlReader(str(layout.prepared), glob_pattern="**/*.jsonl.gz")

    priorities = {source.name: len(config.sources) - i for i, source in enumerate(config.sources)}
    exact = ExactDedupConfig(
        content_getter=_dedup_key,
        document_priority=functools.partial(_source_priority, priorities),
        hash_config=HashConfig(precision=64, hash_fc="xxhash"),
    )
    exact_sigs, exact_dups = layout.scratch("exact-signatures"), layout.scratch("exact-duplicates")
    dedup = config.dedup
    if dedup.exact:
        stages += [
            Stage(
                "exact-signatures",
                "exact duplicates: hashes",
                [prepared(), ExactDedupSignature(str(exact_sigs), exact)],
                tasks,
            ),
            Stage(
                "exact-duplicates",
                "exact duplicates: matches",
                [ExactFindDedups(str(exact_sigs), str(exact_dups), exact)],
                1,
            ),
        ]

    def without_exact_duplicates(exclusion_writer: DiskWriter | None = None) -> list[PipelineStep]:
        if not dedup.exact:
            return []
        return [ExactDedupFilter(str(exact_dups), exact, exclusion_writer=exclusion_writer)]

    minhash = MinhashConfig(
        n_grams=dedup.minhash.n_grams,
        num_buckets=dedup.minhash.num_buckets,
        hashes_per_bucket=dedup.minhash.hashes_per_bucket,
        seed=dedup.minhash.seed,
        hash_config=HashConfig(precision=64, hash_fc="xxhash"),
    )
    signatures, buckets, clusters = (
        layout.scratch(f"minhash-{part}") for part in ("signatures", "buckets", "clusters")
    )
    if dedup.minhash.enabled:
        stages += [
            Stage(
                "minhash-signatures",
                "near duplicates: signatures",
                [
                    prepared(),
                    *without_exact_duplicates(),
                    MinhashDedupSignature(str(signatures), minhash, language=words),
                ],
                tasks,
            ),
            Stage(
                "minhash-buckets",
                "near duplicates: buckets",
                [MinhashDedupBuckets(str(signatures), str(buckets), config=minhash)],
                minhash.num_buckets,
            ),
            Stage(
                "minhash-clusters",
                "near duplicates: clusters",
                [MinhashDedupCluster(str(buckets), str(clusters), config=minhash, save_cluster_size=True)],
                1,
            ),
        ]

    decont = config.decontamination
    decont_config = NGramsDecontConfig(n_grams=decont.n_grams)
    decont_index = layout.scratch("decont-index")
    if decont.eval_sets:
        stages.append(
            Stage(
                "decont-index",
                "decontamination: eval-set index",
                [EvalSetIndexer(decont.eval_sets, str(decont_index), decont_config, words)],
                1,
            )
        )

    final: list[PipelineStep] = [prepared(), Tally("prepared")]
    if dedup.exact:
        final += [*without_exact_duplicates(_removed_writer(layout, "exact_dedup")), Tally("exact_dedup")]
    if dedup.minhash.enabled:
        final += [
            MinhashDedupFilter(
                str(clusters), exclusion_writer=_removed_writer(layout, "near_dedup"), load_cluster_sizes=True
            ),
            Tally("near_dedup"),
        ]
    if config.pii.enabled:
        final += [TajikPIIFormatter(config.pii), Tally("pii")]
    if decont.eval_sets:
        final += [
            NGramsDecontFilter(
                str(decont_index),
                decont_config,
                exclusion_writer=_removed_writer(layout, "decontamination"),
                language=words,
            ),
            Tally("decontamination"),
        ]
    final += [TokenCounter(config.report.tokenizer), shard_writer(config.output, str(layout.shards)), Tally("output")]
    stages.append(Stage("finalise", "finalise: filter, scrub, write shards", final, tasks))
    return stages
