from bot.channels.telegram.split import split_message


def test_short_text_is_one_message() -> None:
    assert split_message("Салом!") == ["Салом!"]


def test_long_answer_splits_on_paragraphs_then_sentences() -> None:
    paragraph = "Тоҷикистон кишвари кӯҳсор аст. " * 40  # ~1240 characters
    text = "\n\n".join([paragraph.strip()] * 4)  # ~5000 characters
    parts = split_message(text)
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert all(p.endswith("аст.") for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_text_without_paragraphs_splits_at_a_sentence_end() -> None:
    text = "Ин ҷумла аст. " * 400  # 5600 characters, no newline
    parts = split_message(text)
    assert all(len(p) <= 4096 for p in parts)
    assert parts[0].endswith(".")


def test_a_word_longer_than_a_message_is_cut_hard() -> None:
    parts = split_message("х" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]
