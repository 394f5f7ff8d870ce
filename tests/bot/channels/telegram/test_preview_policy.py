"""The preview policy on a simulated clock: what a user sees stream on a good link, a slow one, after a 429."""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.telegram.previews import AnswerStats, LinkEstimate, Preview, PreviewPolicy

GOOD = 0.02  # round-trip times, seconds
SLOW = 0.8  # 2G, as the bot measures it (600 ms of latency plus the time to push the text through)
PARTIAL_EVERY = 0.6  # the worker's default partial interval
SPEED = 60.0  # characters a second, as the tiny model writes them on a loaded CPU


@dataclass
class Streamed:
    shown: list[int]  # lengths of the previews sent
    final: int

    @property
    def bytes_ratio(self) -> float:
        """Everything sent for the answer (previews and the final message) over the answer itself."""
        return (sum(self.shown) + self.final) / self.final


def stream(
    policy: PreviewPolicy, link: LinkEstimate, stats: AnswerStats, final: int, start: float = 1000.0
) -> Streamed:
    """An answer of ``final`` characters written at ``SPEED``, its partial texts offered as the worker publishes
    them: the first token at once, then every ``PARTIAL_EVERY`` seconds. Each preview takes a round trip."""
    preview = Preview(draft_id=1)
    shown = []
    now, length = start, 3
    while length < final:
        preview.saw(length, now)
        if policy.allows(link, stats, preview, length, now):
            preview.shown(length, now + link.rtt)
            shown.append(length)
        now += PARTIAL_EVERY
        length = min(final, 3 + int(SPEED * (now - start)))
    stats.finished(final, preview.chars_per_second())
    return Streamed(shown, final)


def seasoned(length: int, answers: int = 20) -> AnswerStats:
    """A bot that has sent ``answers`` answers of about ``length`` characters."""
    stats = AnswerStats()
    for i in range(answers):
        stats.finished(length + (i % 5) * length // 10, SPEED)
    return stats


def test_a_slow_link_gets_fewer_larger_updates_and_stays_within_the_byte_budget() -> None:
    policy = PreviewPolicy()
    good = stream(policy, LinkEstimate(rtt=GOOD), seasoned(600), 600)
    slow = stream(policy, LinkEstimate(rtt=SLOW), seasoned(600), 600)
    assert len(good.shown) >= 6  # about one update a second while it is written
    assert 1 <= len(slow.shown) < len(good.shown)
    assert slow.bytes_ratio <= 1.3 < good.bytes_ratio
    # Both show the first words as soon as they exist: the slow link loses no time to first visible text.
    assert good.shown[0] == slow.shown[0] == 3


def test_a_short_answer_gets_no_preview_on_a_slow_link() -> None:
    policy = PreviewPolicy()
    short = stream(policy, LinkEstimate(rtt=SLOW), seasoned(20), 20)
    assert short.shown == []  # it is written within half a round trip: it arrives as soon as a preview would
    # On a good link the same answer still streams: a preview there costs next to nothing.
    assert stream(policy, LinkEstimate(rtt=GOOD), seasoned(20), 20).shown


def test_the_first_words_show_on_a_slow_link_while_the_answer_may_still_run_long() -> None:
    stats = AnswerStats()
    for length in [40, 50, 400, 500, 600] * 4:  # short and long answers alike
        stats.finished(length, SPEED)
    # A congested 2G link: the short answers would end within half a round trip, the long ones would not.
    streamed = stream(PreviewPolicy(), LinkEstimate(rtt=1.6), stats, 500)
    assert streamed.shown[:1] == [3]
    assert streamed.bytes_ratio <= 1.3


def test_an_answer_near_its_expected_end_gets_no_more_previews() -> None:
    policy = PreviewPolicy()
    streamed = stream(policy, LinkEstimate(rtt=0.15), seasoned(300), 300)
    assert streamed.shown and streamed.shown[-1] < 300 - SPEED * 0.15


def test_a_fresh_bot_streams_on_a_good_link() -> None:
    streamed = stream(PreviewPolicy(), LinkEstimate(rtt=GOOD), AnswerStats(), 400)
    assert len(streamed.shown) >= 4


def test_after_a_429_previews_pause_then_come_rarer() -> None:
    policy = PreviewPolicy()
    link, stats = LinkEstimate(rtt=GOOD), seasoned(600)
    link.saw_retry_after(1000.0)
    paused = stream(policy, link, stats, 400, start=1000.0)
    assert paused.shown == []  # the whole answer falls within the cool-down
    after = stream(policy, link, stats, 600, start=1000.0 + policy.cooldown_after_429)
    calm = stream(policy, LinkEstimate(rtt=GOOD), seasoned(600), 600)
    assert 1 <= len(after.shown) < len(calm.shown)
    assert policy.interval(link, 1015.0) == 2 * policy.interval(LinkEstimate(rtt=GOOD), 1015.0)
