"""Feedback buttons' callback data: short on the wire, and read back in both the short and the long form."""

from __future__ import annotations

import uuid

import pytest

from bot.channels.telegram.sender import feedback_data, feedback_vote
from bot.store.models import Vote

TELEGRAM_CALLBACK_LIMIT = 64  # bytes


@pytest.mark.parametrize("vote", list(Vote))
def test_a_request_uuid_goes_short_and_comes_back_whole(vote: Vote) -> None:
    request_id = str(uuid.uuid4())
    data = feedback_data(request_id, vote)
    assert len(data.encode()) == 26  # against 42–44 for fb:up:<uuid>
    assert feedback_vote(data) == (vote.value, request_id)


@pytest.mark.parametrize("vote", list(Vote))
def test_buttons_already_sent_in_the_long_form_still_count(vote: Vote) -> None:
    request_id = str(uuid.uuid4())
    assert feedback_vote(f"fb:{vote.value}:{request_id}") == (vote.value, request_id)


def test_an_id_that_is_no_canonical_uuid_keeps_the_long_form() -> None:
    for request_id in ("req-1", str(uuid.uuid4()).upper(), uuid.uuid4().hex):
        data = feedback_data(request_id, Vote.DOWN)
        assert data == f"fb:down:{request_id}"
        assert len(data.encode()) <= TELEGRAM_CALLBACK_LIMIT
        assert feedback_vote(data) == ("down", request_id)


@pytest.mark.parametrize(
    "data",
    ["", "fb:", "fb:x" + "A" * 22, "fb:u" + "A" * 21, "fb:u" + "A" * 23, "fb:u" + "!" * 22, "fb:u" + "ҳ" * 22],
)
def test_anything_else_is_no_vote(data: str) -> None:
    assert feedback_vote(data) == ("", "")


def test_other_buttons_are_not_feedback() -> None:
    assert feedback_vote("lang:tg") == ("", "")
    assert feedback_vote("script:latn") == ("", "")
