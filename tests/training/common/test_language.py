"""The short-text language decision: Tajik in any spelling passes; other languages and letter soup do not.

On chat lines it is the bot's decision (``tajik.chat_language``): the chat fixtures of tests/tajik are judged alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tajik import is_tajik_chat
from training.common.language import reply_language

TAJIK = [
    "Пойтахти Тоҷикистон шаҳри Душанбе мебошад. Ин шаҳр калонтарин шаҳри кишвар аст.",
    "Салом! Ман хуб ҳастам, раҳмат.",
    "Ин китоб хеле шавқовар аст, ман онро ду маротиба хондам.",
    "Антоними калимаи «калон» чист?\nХурд, майда, ночиз.",  # no Tajik-only letter at all
    "Ман намедонам.",
]
RUSSIAN_KEYBOARD_TAJIK = [
    "Пойтахти Точикистон шахри Душанбе мебошад. Ин шахр калонтарин шахри кишвар аст.",
    "Салом, чи хел? Ман хуб, рахмат.",
]
OTHER = {
    "russian": "Столица Таджикистана — Душанбе. Это крупнейший город страны, в нём живёт больше миллиона человек.",
    "russian_short": "Привет, как дела?",
    "uzbek": "Ўзбекистон пойтахти Тошкент шаҳри ҳисобланади. Бу шаҳар жуда катта ва чиройли.",
    "uzbek_without_ў": "Бу шаҳар жуда катта ва чиройли.",
    "kazakh": "Қазақстанның астанасы — Астана қаласы. Бұл өте үлкен және әдемі қала.",
    "kyrgyz": "Кыргызстандын борбору Бишкек шаары. Бул абдан чоң жана кооз шаар.",
    "serbian": "Београд је главни град Србије. Ђаци иду у школу сваког дана.",
    "english": "The capital of Tajikistan is Dushanbe.",
    "persian": "پایتخت تاجیکستان دوشنبه است.",
}
LETTER_SOUP = {
    # What a random-weight tiny Gemma 3 wrote (its tokenizer was trained on Tajik, so the letters are Tajik).
    "replacement_characters": "уд������ одам������������������ одам одам Каҳ",
    "control_characters": 'J кал� и*\x11��аҳ кӯҳ Нарам�андиг/анд� ваигй"сабдамақq�� се�*\x16\x16осN ҳав_�к',
    "printable_pieces": "калонориистон мешавдарш ҳакорӣ ғундат ҷӯбиқон нашромӯз",
    "tajik_letters_only": "ҳқғ ӯҷӣ қӯҳ ғӣҷ ҳқӯ ӣғқ ҷӯқ ғҳӣ",
    "one_syllable_repeated": "Каҳаҳаҳаҳаҳаҳаҳаҳаҳ одам",
    "one_word_repeated": "в в в в в в рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз рӯз мебошад",
    "one_broken_byte": "Ин китоб хеле шавқовар аст, ман онро ду маротиба хонд�",
}


@pytest.mark.parametrize("text", TAJIK + RUSSIAN_KEYBOARD_TAJIK)
def test_tajik_passes_in_either_spelling(text: str) -> None:
    verdict = reply_language(text)
    assert verdict.is_tajik, verdict
    assert verdict.printable_share == 1.0 and verdict.word_evidence >= 0.5


@pytest.mark.parametrize("name", sorted(OTHER))
def test_other_languages_do_not_pass(name: str) -> None:
    verdict = reply_language(OTHER[name])
    assert not verdict.is_tajik, verdict
    assert verdict.reason != "letter_soup"


@pytest.mark.parametrize("name", sorted(LETTER_SOUP))
def test_letter_soup_does_not_pass(name: str) -> None:
    verdict = reply_language(LETTER_SOUP[name])
    assert not verdict.is_tajik, verdict
    assert verdict.reason in {"unprintable", "letter_soup"}


def test_empty_is_not_tajik() -> None:
    assert reply_language("  \n").reason == "empty"


@pytest.mark.train
def test_a_random_weight_model_writes_no_tajik(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    prompt = tokenizer("Салом! Пойтахти Тоҷикистон кадом шаҳр аст?", return_tensors="pt").input_ids
    replies = []
    for sample in (False, True, True, True, True, True):
        out = model.generate(prompt, max_new_tokens=48, do_sample=sample, pad_token_id=0)
        replies.append(tokenizer.decode(out[0][prompt.shape[1] :], skip_special_tokens=True))
    verdicts = [reply_language(reply) for reply in replies]
    assert not any(verdict.is_tajik for verdict in verdicts), list(zip(replies, verdicts, strict=True))


CHAT_FIXTURES = Path(__file__).resolve().parents[2] / "tajik" / "fixtures"
TAJIK_SPELLINGS = ("tg_cyrillic", "tg_russian_keyboard", "tg_latin")
NEIGHBOURS = ("ru", "uz", "kk", "ky", "en")
REFUSED_AS = {f"language_{language}" for language in ("ru", "uz", "kk", "ky", "fa", "en", "und")}


def _chat_lines(kind: str) -> list[str]:
    lines: list[str] = []
    for folder in (CHAT_FIXTURES, CHAT_FIXTURES / "later"):
        text = (folder / f"chat_{kind}.txt").read_text(encoding="utf-8")
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


@pytest.mark.parametrize("kind", TAJIK_SPELLINGS)
def test_tajik_chat_lines_in_every_spelling_pass_as_they_do_for_the_bot(kind: str) -> None:
    lines = _chat_lines(kind)
    refused = [(line, reply_language(line)) for line in lines if not reply_language(line).is_tajik]
    assert not refused, refused
    assert all(is_tajik_chat(line) for line in lines)


@pytest.mark.parametrize("kind", NEIGHBOURS)
def test_neighbour_chat_lines_are_refused_as_the_bot_refuses_them(kind: str) -> None:
    lines = _chat_lines(kind)
    verdicts = [reply_language(line) for line in lines]
    disagree = [line for line, verdict in zip(lines, verdicts, strict=True) if verdict.is_tajik != is_tajik_chat(line)]
    assert not disagree, disagree
    # The few the bot itself takes for Tajik (a lone "Рахмат" is Kyrgyz as much as Tajik) are all it takes.
    taken = [line for line, verdict in zip(lines, verdicts, strict=True) if verdict.is_tajik]
    assert len(taken) <= 1, taken
    # Refused for their language or letters, never taken for broken text.
    assert {verdict.reason for verdict in verdicts if not verdict.is_tajik} <= {"foreign_letters", *REFUSED_AS}


def test_a_chat_line_with_a_broken_byte_is_refused_though_the_bot_reads_it_as_tajik() -> None:
    line = "Салом, чи хел? Ман хуб�"
    assert is_tajik_chat(line)
    assert reply_language(line).reason == "unprintable"
