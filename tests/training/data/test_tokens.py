"""Token counts with a local tokenizer folder, as the report and the shards' token_count column use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.tokens import TokenCounter

TEXTS = ["Ҳукумати Ҷумҳурии Тоҷикистон қарор мекунад.", "Салом, ҳамаи шумо чӣ хел?", ""]


def test_without_a_tokenizer_words_are_counted() -> None:
    from datatrove.data import Document

    counter = TokenCounter()
    docs = [Document(text=text, id=str(i), metadata={"source": "web"}) for i, text in enumerate(TEXTS)]
    counted = list(counter.run(iter(docs)))
    assert [doc.metadata["token_count"] for doc in counted] == [5, 5, 0]
    assert counter.stats["tokens/web"].total == 10


def test_a_missing_tokenizer_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        TokenCounter(str(tmp_path / "nowhere"))


@pytest.mark.train
def test_a_saved_tokenizer_folder_counts_like_the_tokenizer(tmp_path: Path) -> None:
    from datatrove.data import Document

    from training.assets import TAJIK_SAMPLE
    from training.tiny import train_tokenizer

    tokenizer = train_tokenizer([TAJIK_SAMPLE.read_text(encoding="utf-8")], vocab_size=300)
    tokenizer.save_pretrained(tmp_path / "tok")

    counter = TokenCounter(str(tmp_path / "tok"))
    docs = [Document(text=text, id=str(i), metadata={"source": "pdfs"}) for i, text in enumerate(TEXTS)]
    counts = [doc.metadata["token_count"] for doc in counter.run(iter(docs))]

    assert counts == [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in TEXTS]
    assert counts[0] > 5  # subwords, not words
