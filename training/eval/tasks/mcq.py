"""Multiple-choice benchmarks: Belebele, SIB-200, TajLiB, TALIM and English MCQ (MMLU / ARC layouts).

Each ``*_item`` function turns one published record into a :class:`ChoiceItem`; the lm-evaluation-harness task
files call the same functions, so both tools score the same prompts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from training.eval.backends.base import Backend
from training.eval.choice import (
    ENGLISH_ANSWER_CUE,
    TAJIK_ANSWER_CUE,
    ChoiceItem,
    lettered_options,
    letters_phrase,
    parse_reply,
    resolve_answer,
)
from training.eval.records import DatasetError, Record, read_records, require_fields
from training.eval.results import Metric, TaskResult

Language = Literal["tg", "en"]
ItemBuilder = Callable[[Record, int], ChoiceItem]

# Enough for "B", "Ҷавоб: B" or "B. Душанбе"; a model that needs more to commit scores as unanswered.
REPLY_MAX_TOKENS = 24

# SIB-200's seven topics, in the order the options are shown, with the names a Tajik reader knows them by.
SIB200_TOPICS = (
    ("science/technology", "илм ва технология"),
    ("travel", "сайёҳат"),
    ("politics", "сиёсат"),
    ("sports", "варзиш"),
    ("health", "тандурустӣ"),
    ("entertainment", "фароғат"),
    ("geography", "ҷуғрофия"),
)


def belebele_item(record: Record, index: int) -> ChoiceItem:
    """Belebele's own prompt, as lm-evaluation-harness's ``belebele_tgk_Cyrl`` writes it."""
    fields = ("flores_passage", "question", "mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
    require_fields(record, (*fields, "correct_answer_num"), f"belebele row {index}")
    options = tuple(str(record[f"mc_answer{n}"]) for n in range(1, 5))
    prompt = (
        f"P: {record['flores_passage']}\nQ: {str(record['question']).strip()}\n"
        f"{lettered_options(options, ': ')}\n{ENGLISH_ANSWER_CUE}"
    )
    # correct_answer_num is always a position ("1".."4"), never an option's text.
    answer = resolve_answer(int(record["correct_answer_num"]), options, numbers_from=1, where=f"belebele row {index}")
    item_id = f"{record.get('link', '')}#{record.get('question_number', index)}"
    return ChoiceItem(id=item_id, prompt=prompt, options=options, answer=answer)


def sib200_item(record: Record, index: int) -> ChoiceItem:
    require_fields(record, ("category", "text"), f"sib200 row {index}")
    labels = [label for label, _ in SIB200_TOPICS]
    if record["category"] not in labels:
        raise DatasetError(f"sib200 row {index}: unknown category {record['category']!r}")
    options = tuple(name for _, name in SIB200_TOPICS)
    prompt = (
        f"Мавзӯи матни зеринро муайян кунед.\n\nМатн: {record['text']}\n\n"
        f"{lettered_options(options)}\n{TAJIK_ANSWER_CUE}"
    )
    item_id = str(record.get("index_id", index))
    return ChoiceItem(id=item_id, prompt=prompt, options=options, answer=labels.index(record["category"]))


def _exam_prompt(question: str, options: Sequence[str]) -> str:
    return (
        f"Ба саволи зерин ҷавоби дурустро интихоб кунед.\n\nСавол: {question.strip()}\n"
        f"{lettered_options(options)}\n{TAJIK_ANSWER_CUE}"
    )


def _group(record: Record, names: Sequence[str]) -> str | None:
    for name in names:
        if record.get(name):
            return str(record[name])
    return None


def tajlib_item(record: Record, index: int) -> ChoiceItem:
    where = f"tajlib row {index}"
    require_fields(record, ("question", "option_a", "option_b", "option_c", "option_d", "answer"), where)
    options = tuple(str(record[f"option_{letter}"]).strip() for letter in "abcd")
    return ChoiceItem(
        id=str(record.get("id", index)),
        prompt=_exam_prompt(str(record["question"]), options),
        options=options,
        answer=resolve_answer(record["answer"], options, numbers_from=1, where=where),
        group=_group(record, ("category", "subject", "domain")),
    )


def talim_item(record: Record, index: int) -> ChoiceItem:
    where = f"talim row {index}"
    require_fields(record, ("question", "options", "answer"), where)
    raw = record["options"]
    parsed = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(parsed, dict):  # {"A": "...", "B": "..."}: the keys are the letters
        options = tuple(str(value).strip() for value in parsed.values())
    elif isinstance(parsed, list):
        options = tuple(str(value).strip() for value in parsed)
    else:
        raise DatasetError(f"{where}: options must be a JSON list or object, got {raw!r}")
    group = " / ".join(str(record[name]) for name in ("subject", "section") if record.get(name)) or None
    return ChoiceItem(
        id=str(record.get("id", index)),
        prompt=_exam_prompt(str(record["question"]), options),
        options=options,
        answer=resolve_answer(record["answer"], options, numbers_from=1, where=where),
        group=group,
    )


def _english_prompt(question: str, options: Sequence[str]) -> str:
    return f"Question: {question.strip()}\n{lettered_options(options)}\n{ENGLISH_ANSWER_CUE}"


def mmlu_item(record: Record, index: int) -> ChoiceItem:
    where = f"mmlu row {index}"
    require_fields(record, ("question", "choices", "answer"), where)
    options = tuple(str(choice) for choice in record["choices"])
    return ChoiceItem(
        id=str(record.get("id", index)),
        prompt=_english_prompt(str(record["question"]), options),
        options=options,
        answer=resolve_answer(record["answer"], options, numbers_from=0, where=where),
        group=_group(record, ("subject",)),
    )


def arc_item(record: Record, index: int) -> ChoiceItem:
    where = f"arc row {index}"
    require_fields(record, ("question", "choices", "answerKey"), where)
    choices = record["choices"]
    options = tuple(str(text) for text in choices["text"])
    labels = [str(label) for label in choices["label"]]
    if str(record["answerKey"]) not in labels:
        raise DatasetError(f"{where}: answerKey {record['answerKey']!r} is not one of the labels {labels}")
    return ChoiceItem(
        id=str(record.get("id", index)),
        prompt=_english_prompt(str(record["question"]), options),
        options=options,
        answer=labels.index(str(record["answerKey"])),
    )


def load_items(path: Path, build: ItemBuilder) -> list[ChoiceItem]:
    return [build(record, index) for index, record in enumerate(read_records(path))]


def reply_instruction(item: ChoiceItem, language: Language) -> str:
    if language == "en":
        return f"Reply with the letter of the correct answer only: {letters_phrase(len(item.options), 'or')}."
    return f"Танҳо ҳарфи ҷавоби дурустро нависед: {letters_phrase(len(item.options), 'ё')}."


async def score_choices(
    name: str,
    kind: str,
    items: Sequence[ChoiceItem],
    backend: Backend,
    *,
    use_loglikelihood: bool,
    language: Language,
) -> TaskResult:
    """Accuracy of the backend's picks; by generation, also the share of replies that picked anything."""
    if use_loglikelihood:
        requests = [(item.prompt, f" {letter}") for item in items for letter in item.letters]
        scores = iter(await backend.loglikelihoods(requests))
        per_item = [[next(scores) for _ in item.letters] for item in items]
        # np.argmax keeps the first of equal scores, as lm-evaluation-harness does.
        picks: list[int | None] = [int(np.argmax(row)) for row in per_item]
        outputs: list[dict[str, object]] = [{"loglikelihoods": [round(v, 4) for v in row]} for row in per_item]
    else:
        conversations = [
            [{"role": "user", "content": f"{reply_instruction(item, language)}\n\n{item.prompt}"}] for item in items
        ]
        generations = await backend.generate(conversations, max_tokens=REPLY_MAX_TOKENS)
        picks = [
            parse_reply(generation.text, item.options) for item, generation in zip(items, generations, strict=True)
        ]
        outputs = [{"reply": generation.text} for generation in generations]

    correct = [[1.0 if pick == item.answer else 0.0] for item, pick in zip(items, picks, strict=True)]
    metrics = [Metric("accuracy", "mean", True, correct)]
    if not use_loglikelihood:
        metrics.append(Metric("answered", "mean", True, [[0.0 if pick is None else 1.0] for pick in picks]))
    details = [
        {
            "id": item.id,
            "group": item.group,
            "target": item.letters[item.answer],
            "prediction": None if pick is None else item.letters[pick],
            **output,
        }
        for item, pick, output in zip(items, picks, outputs, strict=True)
    ]
    return TaskResult(
        task=name,
        kind=kind,
        scoring="loglikelihood" if use_loglikelihood else "generation",
        item_ids=[item.id for item in items],
        metrics=metrics,
        chance=float(np.mean([1.0 / len(item.options) for item in items])) if items else None,
        items=details,
    )
