"""SFT and preference data from rated conversations (``soro data export-sft``).

Each conversation is cut into stretches of answers worth learning from (👍, and unrated ones with
``--include-unrated``; never 👎), written one example a line in the ``{"messages": [...]}`` shape that
``soro train sft`` reads. The curation steps are the curation pipeline's own: its language ID keeps Tajik
conversations, its PII step scrubs every message, its eval-set index drops conversations that share an n-gram
with an evaluation set. 👎 answers become preference pairs in TRL's conversational format: prompt, rejected,
and chosen where a 👍 answer to the same question exists; those without one go to a second file as unpaired
examples (``label: false``, TRL's unpaired preference format).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.export import RatedConversation, Turn, runs
from bot.store.models import Vote
from training.data.config import DecontaminationOptions, PiiOptions
from training.data.langid import tajik_score
from training.sft.data import dedup_key

Message = dict[str, str]


@dataclass
class ExportReport:
    conversations: int = 0
    answers: int = 0
    examples: int = 0  # SFT examples written
    answers_kept: int = 0
    dropped_answers: dict[str, int] = field(default_factory=dict)  # thumbs_down, unrated, blocked
    dropped_examples: dict[str, int] = field(default_factory=dict)  # not_tajik, duplicate, contaminated
    pii_scrubbed: int = 0  # messages in which the PII step replaced something
    pairs: int = 0  # preference pairs with a chosen answer
    unpaired: int = 0  # 👎 answers without a 👍 answer to the same question
    decontaminated_against: list[str] = field(default_factory=list)

    def drop(self, table: dict[str, int], reason: str, count: int = 1) -> None:
        table[reason] = table.get(reason, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Curation:
    """The curation pipeline's PII, language-ID and decontamination steps, applied to single texts."""

    def __init__(self, pii: PiiOptions, decontamination: DecontaminationOptions | None) -> None:
        from training.data.pii import TajikPIIFormatter

        self._pii = TajikPIIFormatter(pii)
        self._contaminated: Callable[[str], bool] = lambda _: False
        self.eval_sets = [s.name for s in decontamination.eval_sets] if decontamination else []
        if decontamination and decontamination.eval_sets:
            self._contaminated = _decontaminator(decontamination)

    def scrub(self, text: str) -> tuple[str, bool]:
        scrubbed = self._pii.format(text)
        return scrubbed, scrubbed != text

    def is_tajik(self, text: str) -> bool:
        return tajik_score(text)[0]

    def contaminated(self, text: str) -> bool:
        return self._contaminated(text)


def _decontaminator(options: DecontaminationOptions) -> Callable[[str], bool]:
    from datatrove.data import Document
    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter

    from training.data.decontamination import EvalSetIndexer
    from training.data.words import TajikWordTokenizer

    for eval_set in options.eval_sets:
        if "://" not in eval_set.path and not Path(eval_set.path).exists():
            raise FileNotFoundError(f"evaluation set {eval_set.name!r} not found at {eval_set.path}")
    config = NGramsDecontConfig(n_grams=options.n_grams)
    words = TajikWordTokenizer()
    index = tempfile.mkdtemp(prefix="soro-decont-")
    for _ in EvalSetIndexer(options.eval_sets, index, config, words).run():
        pass
    decont = NGramsDecontFilter(index, config, language=words)

    def contaminated(text: str) -> bool:
        return decont.filter(Document(text=text, id="conversation")) is not True

    return contaminated


def _messages(turns: list[Turn], curation: Curation, report: ExportReport) -> list[Message]:
    messages = []
    for turn in turns:
        for role, content in (("user", turn.user), ("assistant", turn.answer)):
            scrubbed, changed = curation.scrub(content)
            report.pii_scrubbed += changed
            messages.append({"role": role, "content": scrubbed})
    return messages


def _text(messages: list[Message]) -> str:
    return "\n".join(m["content"] for m in messages)


def _question_key(text: str) -> str:
    return " ".join(text.casefold().split())


def sft_examples(
    conversations: list[RatedConversation], curation: Curation, report: ExportReport, include_unrated: bool
) -> Iterator[list[Message]]:
    seen: set[str] = set()
    for conversation in conversations:
        report.conversations += 1
        report.answers += len(conversation.turns)
        for turn in conversation.turns:
            if turn.vote is Vote.DOWN:
                report.drop(report.dropped_answers, "thumbs_down")
            elif turn.vote is None and not include_unrated:
                report.drop(report.dropped_answers, "unrated")
        for run in runs(conversation.turns, include_unrated):
            messages = _messages(run, curation, report)
            reason = _rejection(messages, curation, seen)
            if reason is not None:
                report.drop(report.dropped_examples, reason)
                continue
            report.examples += 1
            report.answers_kept += len(run)
            yield messages


def _rejection(messages: list[Message], curation: Curation, seen: set[str]) -> str | None:
    key = dedup_key(messages)
    if key in seen:
        return "duplicate"
    seen.add(key)
    text = _text(messages)
    if not curation.is_tajik(text):
        return "not_tajik"
    if curation.contaminated(text):
        return "contaminated"
    return None


def preference_pairs(
    conversations: list[RatedConversation], curation: Curation, report: ExportReport
) -> Iterator[dict[str, Any]]:
    """TRL's conversational preference rows: ``prompt`` (the dialogue up to the question), ``rejected`` (the
    👎 answer), ``chosen`` (a 👍 answer to the same question) when there is one, else ``label: false``."""
    liked: dict[str, str] = {}
    for conversation in conversations:
        for turn in conversation.turns:
            if turn.vote is Vote.UP:
                liked.setdefault(_question_key(turn.user), turn.answer)
    seen: set[str] = set()
    for conversation in conversations:
        for index, turn in enumerate(conversation.turns):
            if turn.vote is not Vote.DOWN:
                continue
            context = _messages(conversation.turns[:index], curation, report)
            question, changed = curation.scrub(turn.user)
            report.pii_scrubbed += changed
            prompt = [*context, {"role": "user", "content": question}]
            rejected, changed = curation.scrub(turn.answer)
            report.pii_scrubbed += changed
            reason = _rejection([*prompt, {"role": "assistant", "content": rejected}], curation, seen)
            if reason is not None:
                report.drop(report.dropped_examples, f"preference_{reason}")
                continue
            chosen = liked.get(_question_key(turn.user))
            row: dict[str, Any] = {"prompt": prompt, "rejected": [{"role": "assistant", "content": rejected}]}
            if chosen is not None:
                row["chosen"] = [{"role": "assistant", "content": curation.scrub(chosen)[0]}]
                report.pairs += 1
            else:
                report.unpaired += 1
            yield row


def write_jsonl(path: Path, rows: Iterator[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def unpaired_path(preferences: Path) -> Path:
    return preferences.with_name(f"{preferences.stem}.unpaired{preferences.suffix}")


def export(
    conversations: list[RatedConversation],
    out: Path,
    curation: Curation,
    *,
    include_unrated: bool = False,
    preferences: Path | None = None,
    blocked_answers: int = 0,
) -> ExportReport:
    """Write the SFT file (and the preference files); returns what was kept and why the rest was dropped."""
    report = ExportReport(decontaminated_against=curation.eval_sets)
    if blocked_answers:
        report.drop(report.dropped_answers, "blocked", blocked_answers)
    write_jsonl(out, ({"messages": m} for m in sft_examples(conversations, curation, report, include_unrated)))
    if preferences is not None:
        rows = list(preference_pairs(conversations, curation, report))
        write_jsonl(preferences, (row for row in rows if "chosen" in row))
        unpaired = (
            {"prompt": row["prompt"], "completion": row["rejected"], "label": False}
            for row in rows
            if "chosen" not in row
        )
        write_jsonl(unpaired_path(preferences), unpaired)
    return report
