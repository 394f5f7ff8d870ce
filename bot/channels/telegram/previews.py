"""When a streamed preview of an answer is worth sending, given the link to the Bot API.

Every preview (a draft in a private chat, an edit in a group) re-sends the whole text so far, so previews cost
bytes that grow with the answer, and each takes a round trip during which the next update of that answer, the
final one included, waits. On a good link they are cheap and show the answer growing. On a slow one
(2G/3G, a throttled route) they can cost more than the answer itself and delay it. ``PreviewPolicy`` decides
from what the bot measures: the round-trip time of its Bot API calls and their recent 429s (``LinkEstimate``),
how long answers tend to be and how fast the model writes them (``AnswerStats``), and what this answer's
previews have cost so far (``Preview``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class LinkEstimate:
    """What the bot knows of its link to the Bot API: smoothed round-trip time and when it was told 429."""

    rtt: float = 0.1
    retry_afters: deque[float] = field(default_factory=lambda: deque(maxlen=64))  # monotonic times

    def observe_rtt(self, seconds: float) -> None:
        self.rtt = 0.8 * self.rtt + 0.2 * seconds

    def saw_retry_after(self, now: float) -> None:
        self.retry_afters.append(now)

    @property
    def last_retry_after(self) -> float:
        return self.retry_afters[-1] if self.retry_afters else -math.inf

    def retry_afters_since(self, since: float) -> int:
        return sum(1 for at in self.retry_afters if at >= since)


@dataclass
class AnswerStats:
    """Recent answers of this bot: their lengths, and how fast the model wrote them (characters a second)."""

    lengths: deque[int] = field(default_factory=lambda: deque(maxlen=256))
    chars_per_second: float | None = None

    def finished(self, length: int, chars_per_second: float | None) -> None:
        self.lengths.append(length)
        if chars_per_second is not None:
            previous = self.chars_per_second
            self.chars_per_second = chars_per_second if previous is None else 0.8 * previous + 0.2 * chars_per_second

    def expected_length(self, so_far: int, quantile: float, typical: int, min_answers: int) -> int:
        """The final length of an answer that is ``so_far`` characters long now, as the ``quantile`` of recent
        answers that grew longer than that; ``typical`` until ``min_answers`` answers were seen."""
        if len(self.lengths) < min_answers:
            return max(so_far, typical)
        longer = sorted(length for length in self.lengths if length > so_far)
        return longer[min(int(len(longer) * quantile), len(longer) - 1)] if longer else so_far


@dataclass
class Preview:
    """One answer's previews: what was shown and what it cost, and how fast its text arrives."""

    draft_id: int
    message_id: int | None = None
    updates: int = 0
    sent_chars: int = 0  # length of the text shown now
    spent_chars: int = 0  # characters of every preview sent for this answer, together
    last_update: float = 0.0
    paused_until: float = 0.0
    first_seen: tuple[float, int] | None = None  # (when, length) of the first partial text
    last_seen: tuple[float, int] | None = None

    def saw(self, length: int, now: float) -> None:
        if self.first_seen is None:
            self.first_seen = (now, length)
        self.last_seen = (now, length)

    def shown(self, length: int, now: float) -> None:
        self.updates += 1
        self.sent_chars = length
        self.spent_chars += length
        self.last_update = now

    def chars_per_second(self, min_seconds: float = 0.3) -> float | None:
        """How fast this answer's text grew, once it has been watched long enough to tell."""
        if self.first_seen is None or self.last_seen is None:
            return None
        (start, first), (end, last) = self.first_seen, self.last_seen
        if end - start < min_seconds or last <= first:
            return None
        return (last - first) / (end - start)


@dataclass
class PreviewPolicy:
    """Which partial texts of an answer to show. A preview goes out only when all of these hold:

    - no 429 in the last ``cooldown_after_429`` seconds, and none answered for this chat still in force;
    - the first one has ``min_first_chars``; later ones add ``min_new_chars`` and come ``interval()`` apart,
      which grows with the round-trip time and doubles for every 429 of the last ``backoff_window`` seconds;
    - even a long guess of its length says the answer goes on for ``worth_rtts`` round trips more: one that
      ends sooner gets no (more) previews. With half a round trip, an answer left without a preview still
      shows within one round trip of its first token, as a preview would;
    - this answer's previews together stay within ``budget_share()`` of a short guess of its final length.
      The share is ``budget_rtt / rtt``: on a link with a round trip of ``budget_rtt`` previews may cost as
      many bytes as the answer, on one four times slower a quarter of it (at most one or two small previews).

    The final length is guessed, and the model's speed measured, from recent answers (``AnswerStats``).
    """

    min_interval: float = 1.0  # Telegram takes about one message a second per chat
    rtt_factor: float = 4.0
    min_new_chars: int = 40
    min_first_chars: int = 1  # the first words show that the answer is coming: they are cheap, and worth most
    cooldown_after_429: float = 10.0
    backoff_window: float = 60.0
    worth_rtts: float = 0.5
    budget_rtt: float = 0.15
    typical_answer_chars: int = 400
    min_answers: int = 8

    def interval(self, link: LinkEstimate, now: float) -> float:
        backoff = 2.0 ** min(link.retry_afters_since(now - self.backoff_window), 4)
        return max(self.min_interval, self.rtt_factor * link.rtt) * backoff

    def budget_share(self, link: LinkEstimate) -> float:
        return self.budget_rtt / max(link.rtt, 1e-3)

    def allows(self, link: LinkEstimate, stats: AnswerStats, preview: Preview, length: int, now: float) -> bool:
        """Whether to show the answer's text, ``length`` characters so far, at ``now`` (monotonic seconds)."""
        if now < preview.paused_until or now - link.last_retry_after < self.cooldown_after_429:
            return False
        if preview.updates == 0:
            if length < self.min_first_chars:
                return False
        elif length - preview.sent_chars < self.min_new_chars or now - preview.last_update < self.interval(link, now):
            return False
        # Each rule errs on its own safe side: it ends early only if even a long guess says so, and its bytes
        # must fit what even a short guess of the answer allows.
        long_guess = stats.expected_length(length, 0.75, self.typical_answer_chars, self.min_answers)
        short_guess = stats.expected_length(length, 0.25, self.typical_answer_chars, self.min_answers)
        speed = preview.chars_per_second() or stats.chars_per_second
        if speed and (long_guess - length) / speed < self.worth_rtts * link.rtt:
            return False
        return preview.spent_chars + length <= self.budget_share(link) * short_guess
