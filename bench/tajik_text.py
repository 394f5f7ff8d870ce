"""Tajik as people type it: accuracy and cost of the text module's new functions.

    .venv/bin/python bench/tajik_text.py [--data ../shared/data/tajik]

Accuracy
- restoration: the official prose (``prose/Payom_*.txt``) with ғ ӣ қ ӯ ҳ ҷ replaced as on a Russian keyboard, then
  ``tajik.restore``; word accuracy, and correct words it changed. Twice: with the shipped lexicon (counted from
  this same prose plus the project's own texts) and, to show what it does on unseen text, with a lexicon of the
  other five addresses for each address.
- transliteration: ``from_latin(to_latin(line))`` on the same prose, share of words that come back.
- chat lines: ``tajik.is_tajik_chat`` on the test lines (tests/tajik/fixtures), Tajik recall and precision and
  the share per kind; ``chat_language`` on the shared UDHR paragraphs.
Cost: µs per chat line over all the test lines, the first pass (cold word caches) and the best of five more.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from tajik import Lexicon, default_lexicon, from_latin, is_tajik_chat, restore, script_of, to_latin
from tajik.letters import RUSSIAN_KEYBOARD_FALLBACK
from tajik.lexicon import WORD

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "tajik" / "fixtures"
# Written after the word lists and rules were settled on the first set, never used to change them; its three
# Tajik files say the same sentences three ways.
LATER = FIXTURES / "later"
TAJIK_KINDS = ("tg_cyrillic", "tg_russian_keyboard", "tg_latin")
OTHER_KINDS = ("ru", "uz", "kk", "ky", "fa", "en")


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def restoration(lines: list[str], lexicon: Lexicon) -> tuple[int, int, int]:
    total = right = spoiled = 0
    for line in lines:
        stripped = line.translate(RUSSIAN_KEYBOARD_FALLBACK)
        for word, typed, out in zip(
            WORD.findall(line), WORD.findall(stripped), WORD.findall(restore(stripped, lexicon)), strict=True
        ):
            total += 1
            right += out == word
            spoiled += typed == word and out != word
    return total, right, spoiled


def round_trip(lines: list[str]) -> tuple[int, int]:
    total = right = 0
    for line in lines:
        words, back = WORD.findall(line), WORD.findall(from_latin(to_latin(line)))
        total += len(words)
        right += sum(a == b for a, b in zip(words, back, strict=False))
    return total, right


def _recall_precision(name: str, found: dict[str, list[bool]]) -> None:
    tp = sum(sum(found[k]) for k in TAJIK_KINDS)
    fp = sum(sum(found[k]) for k in OTHER_KINDS)
    positives = sum(len(found[k]) for k in TAJIK_KINDS)
    negatives = sum(len(found[k]) for k in OTHER_KINDS)
    print(f"| {name}: Tajik recall ({positives} Tajik lines) | {tp / positives:.3f} |")
    print(f"| {name}: Tajik precision ({negatives} other lines) | {tp / (tp + fp):.3f} |")


def per_line_us(function: Callable[[str], object], lines: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    for line in lines:
        function(line)
    cold = (time.perf_counter() - start) / len(lines) * 1e6
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for line in lines:
            function(line)
        best = min(best, (time.perf_counter() - start) / len(lines) * 1e6)
    return cold, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tajik")
    args = parser.parse_args()
    prose = {path.name: _lines(path) for path in sorted((args.data / "prose").glob("Payom_*.txt"))}
    all_prose = [line for lines in prose.values() for line in lines]
    chat = {kind: _lines(FIXTURES / f"chat_{kind}.txt") for kind in TAJIK_KINDS + OTHER_KINDS}
    chat_lines = [line for lines in chat.values() for line in lines]

    start = time.perf_counter()
    lexicon = default_lexicon()
    load_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    is_tajik_chat("зирзира zirzira")  # builds the Latin and stem indexes, once a process
    index_ms = (time.perf_counter() - start) * 1000
    print(f"shipped lexicon: {len(lexicon):,} forms, loaded in {load_ms:.0f} ms, indexed in {index_ms:.0f} ms\n")
    # Timed first, while the per-word caches are cold: the first pass is what a new word costs.
    functions = [
        ("script_of", script_of),
        ("is_tajik_chat", is_tajik_chat),
        ("restore", restore),
        ("from_latin", from_latin),
        ("bot.reading.read (all of it)", _read()),
    ]
    costs = [(name, *per_line_us(function, chat_lines)) for name, function in functions]

    print("| measure | value |")
    print("|---|---:|")
    total, right, spoiled = restoration(all_prose, lexicon)
    print(f"| restoration, shipped lexicon: word accuracy ({total:,} words) | {right / total:.2%} |")
    print(f"| restoration, shipped lexicon: correct words changed | {spoiled} |")
    t = r = s = 0
    for name, lines in prose.items():
        held_out = Lexicon.from_texts(line for other, rest in prose.items() if other != name for line in rest)
        a, b, c = restoration(lines, held_out)
        t, r, s = t + a, r + b, s + c
    print(f"| restoration, lexicon of the other addresses: word accuracy | {r / t:.2%} |")
    print(f"| restoration, lexicon of the other addresses: correct words changed | {s} ({s / t:.3%}) |")
    baseline = (
        sum(w == w.translate(RUSSIAN_KEYBOARD_FALLBACK) for line in all_prose for w in WORD.findall(line)) / total
    )
    print(f"| words right with the letters stripped, before restoring | {baseline:.2%} |")
    total, right = round_trip(all_prose)
    print(f"| from_latin(to_latin(x)): words back as they were | {right / total:.2%} |")

    found = {kind: [is_tajik_chat(line) for line in lines] for kind, lines in chat.items()}
    _recall_precision("chat lines", found)
    for kind in TAJIK_KINDS + OTHER_KINDS:
        share = sum(found[kind]) / len(found[kind])
        print(f"| chat lines `{kind}` ({len(found[kind])}): taken for Tajik | {share:.1%} |")
    later = {kind: _lines(LATER / f"chat_{kind}.txt") for kind in TAJIK_KINDS + OTHER_KINDS}
    _recall_precision("later chat lines", {k: [is_tajik_chat(line) for line in lines] for k, lines in later.items()})
    for kind, function in [("tg_russian_keyboard", restore), ("tg_latin", from_latin)]:
        t = r = 0
        for proper, typed in zip(later["tg_cyrillic"], later[kind], strict=True):
            words, out = WORD.findall(proper), WORD.findall(function(typed))
            t, r = t + len(words), r + sum(a == b for a, b in zip(words, out, strict=False))
        print(f"| later chat lines `{kind}` → proper Cyrillic: word accuracy ({t} words) | {r / t:.1%} |")
    udhr_right = udhr_total = 0
    for path in sorted((args.data / "langid").glob("udhr_*.txt")):
        tajik = path.name == "udhr_tg.txt"
        paragraphs = _lines(path)
        udhr_total += len(paragraphs)
        udhr_right += sum(is_tajik_chat(p) == tajik for p in paragraphs)
    print(f"| UDHR paragraphs (6 languages, {udhr_total}): Tajik or not judged right | {udhr_right / udhr_total:.1%} |")

    print("\n| function | µs per chat line, first pass | µs per chat line, best of 5 |")
    print("|---|---:|---:|")
    for name, cold, warm in costs:
        print(f"| {name} | {cold:.1f} | {warm:.1f} |")


def _read() -> Callable[[str], object]:
    from bot.reading import read

    return read


if __name__ == "__main__":
    main()
