"""Which webhook updates skip the dispatcher: plain text messages only, and only well-formed ones."""

from __future__ import annotations

from typing import Any

import pytest

from bot.channels.telegram.router import plain_text
from tests.support.telegram_api import text_update


def test_a_text_message_goes_straight_to_its_turn() -> None:
    assert plain_text(text_update(7, 4242, "Салом, муаллим!")) == (4242, "Салом, муаллим!")
    assert plain_text(text_update(8, -100123, "Салом ба ҳама")) == (-100123, "Салом ба ҳама")  # a group


def _with(message: dict[str, Any], **top: Any) -> dict[str, Any]:
    update = text_update(9, 4242, "Салом")
    update["message"].update(message)
    update.update(top)
    return update


@pytest.mark.parametrize(
    "update",
    [
        text_update(10, 4242, "/start"),  # commands have their handlers
        _with({"reply_to_message": {"message_id": 1, "date": 0, "chat": {"id": 4242, "type": "private"}}}),
        _with({"message_thread_id": 5, "is_topic_message": True}),  # answers belong in the topic
        _with({"business_connection_id": "b1"}),
        _with({"text": ""}),
        _with({"photo": [{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}], "caption": "Ин чист?"}),
        _with({"chat": {"id": "4242", "type": "private"}}),  # malformed: the dispatcher's model refuses it
        _with({"message_id": True}),
        _with({}, edited_message={}),
        {"update_id": 11, "edited_message": text_update(11, 4242, "Салом")["message"]},
        {"update_id": "12", "message": text_update(12, 4242, "Салом")["message"]},
        ["not", "an", "update"],
    ],
)
def test_anything_else_goes_through_the_dispatcher(update: Any) -> None:
    assert plain_text(update) is None
