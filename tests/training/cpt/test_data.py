"""Packing and the replay mix: every token of the mixed stream lands in a sequence, in the share asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.common.documents import read_documents, shard_files
from training.cpt.config import CptDataOptions, ReplayOptions
from training.cpt.data import build_cpt_data, pack, replay_selection, tokenize_documents

pytestmark = pytest.mark.train


def test_packing_concatenates_documents_across_sequence_boundaries(tiny_model_dir: Path) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    documents = Dataset.from_dict({"text": ["Салом, дӯстам!", "Мактаб дар деҳа аст.", "Ҳаво имрӯз гарм аст."]})
    tokenized = tokenize_documents(documents, tokenizer)
    stream = [token for row in tokenized["input_ids"] for token in row]
    assert tokenized["input_ids"][0][0] == tokenizer.bos_token_id
    assert tokenized["input_ids"][0][-1] == tokenizer.eos_token_id

    packed = pack(tokenized, seq_len=8)
    sequences = packed["input_ids"]
    assert all(len(sequence) == 8 for sequence in sequences)
    assert [token for sequence in sequences for token in sequence] == stream[: len(sequences) * 8]
    assert len(stream) - len(sequences) * 8 < 8  # only the tail that fills no sequence is left out
    assert packed["labels"] == sequences
    # At least one sequence holds the end of one document and the start of the next.
    assert any(tokenizer.eos_token_id in sequence[:-1] for sequence in sequences)


@pytest.mark.shared_data
def test_reads_jsonl_parquet_and_text_shards(tmp_path: Path, prose_shards: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["Дар деҳа мактаб ҳаст.", ""]}), tmp_path / "extra.parquet")
    (tmp_path / "note.txt").write_text("Ин ҳуҷҷат\n\nаз ду сатр иборат аст.", encoding="utf-8")
    assert [p.name for p in shard_files([prose_shards])] == ["shard-00.jsonl", "shard-01.jsonl"]

    texts = read_documents([tmp_path], text_field="content")["text"]
    assert sorted(texts) == ["Дар деҳа мактаб ҳаст.", "Ин ҳуҷҷат\n\nаз ду сатр иборат аст."]  # empty one dropped
    with pytest.raises(ValueError, match="no field 'body'"):
        read_documents([tmp_path / "extra.parquet"], text_field="body")


@pytest.mark.shared_data
def test_replay_mix_reaches_the_configured_share(
    tiny_model_dir: Path, prose_shards: Path, english_replay: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    options = CptDataOptions(
        train=[prose_shards],
        validation_fraction=0.05,
        seq_len=64,
        # The English declaration, split into paragraphs, is far more than 5 % of the corpus needs.
        replay=ReplayOptions(paths=[english_replay], ratio=0.05),
    )
    data = build_cpt_data(options, tokenizer, seed=3)
    report = data.report
    assert report.replay_documents == 1  # a .txt file is one document
    assert 0.05 <= report.replay_share < 0.5
    assert report.train_sequences == len(data.train) > 0
    assert report.validation_documents == len(data.validation_texts) or len(data.validation_texts) == 64
    # Rebuilt from the same config and seed, the data is identical: the basis of exact resume.
    again = build_cpt_data(options, tokenizer, seed=3)
    assert again.train["input_ids"] == data.train["input_ids"]


def test_replay_selection_takes_just_enough_documents() -> None:
    from datasets import Dataset

    replay = Dataset.from_dict({"input_ids": [[1] * 10] * 50, "length": [10] * 50})
    chosen = replay_selection(replay, main_tokens=900, ratio=0.1, seed=0)
    assert sum(chosen["length"]) == 100  # 100 / (900 + 100) = 10 %
    assert len(replay_selection(replay, main_tokens=900, ratio=0.0, seed=0)) == 0
