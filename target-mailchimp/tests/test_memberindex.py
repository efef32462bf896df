"""``MemberIndex``: the member states on disk give back what was stored, and the states in use stay
the same objects while they are hot."""

from __future__ import annotations

from dataclasses import replace

import pytest
from target_mailchimp import memberindex
from target_mailchimp.client import MemberState
from target_mailchimp.memberindex import MemberIndex


def _state(i: int) -> MemberState:
    return MemberState(
        status="subscribed",
        merge={
            "FNAME": f"Zoë{i}",
            "OROID": str(i),
            "ADDRESS": {"addr1": "x", "zip": "1"},
            "N": 2.5,
        },
        tags={"oro:vip": "oro:VIP"},
        last_changed="2024-01-01T00:00:00+00:00",
        tags_complete=i % 2 == 0,
        oro_id=str(i),
        timestamp_opt=None,
        timestamp_signup="2023-01-01T00:00:00+00:00",
    )


def test_states_come_back_equal_and_hot_ones_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memberindex, "HOT_MAX", 10)
    index = MemberIndex()
    for i in range(25):  # as the whole-audience read stores them: to disk, not hot
        first = _state(i)
        assert index.setdefault(f"h{i}", first) is first  # new: the object given comes back
    again = index.setdefault("h3", _state(99))
    assert again == _state(3)  # already known: the stored state, not the one offered
    assert "h24" in index
    assert "nope" not in index
    assert index.get("nope") is None
    state = index.get("h1")
    assert state == _state(1)
    assert index.get("h1") is state  # hot: an in-place change (complete_tags) shows
    state.tags, state.tags_complete = {"oro:a": "oro:A"}, True
    assert index.get("h1").tags == {"oro:a": "oro:A"}
    for i in range(30):  # more than HOT_MAX states in use: all written back, none lost
        index[f"n{i}"] = _state(100 + i)
    assert len(index._hot) <= 10
    assert index.get("h1") == replace(_state(1), tags={"oro:a": "oro:A"}, tags_complete=True)
    assert all(index.get(f"n{i}") == _state(100 + i) for i in range(30))
    assert index.pop("n5") == _state(105)
    assert "n5" not in index
    assert index.pop("n5") is None
    index.close()
