"""`soro data …` verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Corpus curation: web text, PDFs and school books → training shards.")


@app.command()
def build(
    config_path: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="Curation config (YAML), e.g. configs/data/tajik-corpus.yaml.")
    ],
    restart: Annotated[bool, typer.Option(help="Forget an unfinished run in the work folder; start over.")] = False,
    verbose: Annotated[bool, typer.Option(help="Show datatrove's log lines instead of the progress display.")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set executor.workers=4 (repeatable; value read as YAML)."),
    ] = None,
) -> None:
    """Build training shards from the sources in CONFIG; run it again to resume after a crash."""
    from rich.console import Console

    from training.config import ConfigError
    from training.data.build import ResumeConflict, StageFailed, build_corpus
    from training.data.config import load_curation_config

    console = Console(stderr=True)
    try:
        result = build_corpus(
            load_curation_config(config_path, overrides or []), restart=restart, console=console, verbose=verbose
        )
    except (ConfigError, ResumeConflict, FileNotFoundError) as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    except StageFailed as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    if result.report is None:
        return
    console.print(f"Shards: {result.layout.shards}")
    console.print(f"Report: {result.report.files['markdown']}")
    for totals in result.report.sources:
        console.print(
            f"  {totals.source}: {totals.docs_in:,} → {totals.docs_out:,} documents, "
            f"{totals.tokens_out:,} tokens ({result.report.tokenizer})"
        )


@app.command("export-sft")
def export_sft(
    out: Annotated[Path, typer.Argument(metavar="OUT.jsonl", help="SFT examples, as `soro train sft` reads them.")],
    preferences: Annotated[
        Path | None, typer.Option(help="Also write 👎 answers as TRL preference pairs (DPO) to this JSONL.")
    ] = None,
    include_unrated: Annotated[bool, typer.Option(help="Keep unrated answers too (never 👎 ones).")] = False,
    config_path: Annotated[
        Path,
        typer.Option("--config", help="Curation config whose PII options and evaluation sets (decontamination) apply."),
    ] = Path("configs/data/tajik-corpus.yaml"),
    decontaminate: Annotated[
        bool, typer.Option(help="Drop conversations sharing an n-gram with the config's evaluation sets.")
    ] = True,
) -> None:
    """Conversations worth learning from (👍, Tajik, PII scrubbed, deduplicated, decontaminated) from the bot's
    database (SORO_DATABASE_URL), with a report of what was kept and why the rest was dropped."""
    import asyncio
    import json

    from rich.console import Console

    from bot.export import ReadResult, rated_conversations
    from bot.store.db import create_engine, session_factory
    from soro.settings import Settings
    from training.config import ConfigError
    from training.data.config import load_curation_config
    from training.data.feedback_export import Curation, export

    console = Console(stderr=True)
    try:
        curation_config = load_curation_config(config_path)
        curation = Curation(curation_config.pii, curation_config.decontamination if decontaminate else None)
    except (ConfigError, FileNotFoundError) as exc:
        console.print(f"{exc} (or pass --no-decontaminate to export without it)", style="red", markup=False)
        raise typer.Exit(2) from None

    async def read() -> ReadResult:
        engine = create_engine(Settings().database_url)
        try:
            return await rated_conversations(session_factory(engine))
        finally:
            await engine.dispose()

    result = asyncio.run(read())
    report = export(
        result.conversations,
        out,
        curation,
        include_unrated=include_unrated,
        preferences=preferences,
        blocked_answers=result.blocked_answers,
    )
    report_path = out.with_name(f"{out.stem}.report.json")
    report_path.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    console.print(
        f"{report.examples} examples ({report.answers_kept} of {report.answers} answers) → {out}", markup=False
    )
    dropped = {**report.dropped_answers, **report.dropped_examples}
    console.print(
        f"dropped: {json.dumps(dropped, ensure_ascii=False)}; PII scrubbed in {report.pii_scrubbed} messages",
        markup=False,
    )
    if preferences is not None:
        console.print(
            f"{report.pairs} preference pairs → {preferences}; {report.unpaired} without a chosen answer", markup=False
        )
    console.print(f"report: {report_path}", markup=False)


@app.command()
def lexicon(
    corpus: Annotated[
        Path, typer.Argument(help="Shards of `soro data build` (its output folder or a shard) or a .txt file.")
    ],
    out: Annotated[Path, typer.Argument(help="The lexicon file to write.")],
    also: Annotated[
        list[Path] | None, typer.Option(help="More text to count (another corpus, the project's own texts).")
    ] = None,
    min_count: Annotated[int, typer.Option(help="Leave out forms seen fewer times than this.")] = 1,
) -> None:
    """Count the Tajik word forms of CORPUS into the lexicon OUT (tajik.lexicon) that restores Tajik letters."""
    from rich.console import Console

    from training.data.lexicon import build_lexicon

    console = Console(stderr=True)
    sources = [corpus, *(also or [])]
    missing = [str(path) for path in sources if not path.exists()]
    if missing:
        console.print(f"not found: {', '.join(missing)}", style="red", markup=False)
        raise typer.Exit(2)
    built, documents = build_lexicon(sources, min_count)
    header = "Tajik word forms counted by `soro data lexicon` from: " + ", ".join(path.name for path in sources)
    built.save(out, header)
    console.print(f"{len(built):,} forms from {documents:,} documents → {out}")
