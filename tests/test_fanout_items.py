"""Fan-out items and the resume state they advance (no I/O)."""

from __future__ import annotations

import msgspec

from feishu_vc_async.errors import InvalidQueryError, NotFoundError
from feishu_vc_async.fanout import MeetingFailure, PageItem, Resume
from feishu_vc_async.models import MeetingQuery, Participant

Q = MeetingQuery(
    meeting_no="123456789", meeting_start_time=1_700_000_000, meeting_end_time=1_700_003_600
)
OTHER = msgspec.structs.replace(Q, meeting_no="987654321")


def test_record_follows_pages_to_completion_and_keeps_failed_tokens() -> None:
    resume = Resume()
    people = [Participant(participant_name="a")]
    resume.record(PageItem(Q, people, None, "p2", False, 0))
    assert resume.next_tokens == {Q.key: "p2"}
    assert resume.completed == set()
    resume.record(PageItem(Q, people, "p2", None, True, 1))
    assert resume.completed == {Q.key}
    assert resume.next_tokens == {}
    # A meeting that failed on its second page is retried from that page next time.
    error = NotFoundError(http_status=400, code=126009, msg="nope", log_id="L")
    resume.record(MeetingFailure(OTHER, error, 1, "p2"))
    assert resume.next_tokens == {OTHER.key: "p2"}
    # Failures on the first page, and inputs that are not queries, leave nothing.
    resume.record(MeetingFailure(OTHER, error, 0, None))
    junk = MeetingFailure("junk", InvalidQueryError("query", "junk", "bad"), 0, None)  # type: ignore[arg-type]
    assert junk.key is None
    resume.record(junk)
    assert resume.next_tokens == {OTHER.key: "p2"}
    assert resume.completed == {Q.key}


def test_resume_is_a_json_checkpoint_and_items_match_by_position() -> None:
    resume = Resume(completed={Q.key}, next_tokens={OTHER.key: "tok"})
    assert msgspec.json.decode(msgspec.json.encode(resume), type=Resume) == resume
    item = PageItem(Q, [], None, None, True, 0)
    match item:
        case PageItem(query, participants, page_token, next_token, is_last, index):
            assert (query, participants, page_token, next_token, is_last, index) == (
                Q,
                [],
                None,
                None,
                True,
                0,
            )
    assert item.key == Q.key
