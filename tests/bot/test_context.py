from bot.context import build_context, estimate_tokens, merge_turns
from inference.queue import ChatMessage


def turn(role: str, text: str) -> ChatMessage:
    return ChatMessage(role, text)


def test_oldest_turns_are_dropped_first_and_the_question_is_kept() -> None:
    history = [
        turn("user", "а" * 230),
        turn("assistant", "б" * 230),
        turn("user", "в" * 230),
        turn("assistant", "г" * 230),
    ]
    history.append(turn("user", "Саволи нав?"))
    budget = estimate_tokens("system", 2.3) + 3 * estimate_tokens("а" * 230, 2.3) + estimate_tokens("Саволи нав?", 2.3)
    context = build_context(history, "system", budget, 2.3)
    assert context[0] == turn("system", "system")
    assert context[-1] == turn("user", "Саволи нав?")
    # The oldest user turn is gone; what remains starts with a user turn, as chat templates require.
    assert [m.content[0] for m in context[1:-1]] == ["в", "г"]


def test_the_question_is_kept_even_when_it_alone_exceeds_the_budget() -> None:
    context = build_context([turn("user", "х" * 10_000)], "system", 100, 2.3)
    assert context[-1].content == "х" * 10_000


def test_messages_sent_in_a_row_become_one_turn() -> None:
    merged = merge_turns([turn("assistant", "stray"), turn("user", "Салом"), turn("user", "Чӣ хел?")])
    assert merged == [turn("user", "Салом\nЧӣ хел?")]
