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


def test_permanent_failures_are_recorded_as_given_up_and_transient_ones_are_not() -> None:
    from feishu_vc_async.errors import InternalServerError, PermissionDeniedError, TransportError

    resume = Resume()
    gone = NotFoundError(http_status=404, code=121004, msg="data gone", log_id="L")
    resume.record(MeetingFailure(Q, gone, 0, None))
    denied = PermissionDeniedError(http_status=403, code=121005, msg="no", log_id="L")
    resume.record(MeetingFailure(OTHER, denied, 1, "p2"))
    assert resume.failed == {Q.key: 121004, OTHER.key: 121005}
    assert resume.next_tokens == {OTHER.key: "p2"}  # --retry-failed goes on from there
    # A transient failure of a meeting given up earlier (asked again) clears the record...
    busy = InternalServerError(http_status=500, code=121001, msg="busy", log_id="L")
    resume.record(MeetingFailure(Q, busy, 0, None))
    assert resume.failed == {OTHER.key: 121005}
    # ...and so does a page, when a retried meeting now answers.
    resume.record(PageItem(OTHER, [], "p2", None, True, 0))
    assert resume.failed == {}
    assert resume.completed == {OTHER.key}
    # Invalid input is given up for good too (code 0 when the error has none).
    resume.record(MeetingFailure(Q, InvalidQueryError("meeting_no", "1", "9 digits"), 0, None))
    resume.record(MeetingFailure(Q, TransportError("reset"), 0, None))  # not permanent
    assert resume.failed == {}
    resume.record(MeetingFailure(Q, InvalidQueryError("meeting_no", "1", "9 digits"), 0, None))
    assert resume.failed == {Q.key: 0}
    # Old checkpoints (no "failed") still decode.
    old = msgspec.json.decode(b'{"completed":[],"next_tokens":{}}', type=Resume)
    assert old.failed == {}
