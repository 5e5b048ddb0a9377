"""Replays of a mail's links sent at the same instant (the red-team pass of session 5): a confirm
link works once however many clients press it together, and a withdraw link used many times at
once records its withdrawal once. The handlers lock the token, then the lead (app_logic.
consent_link_token, app_logic.link_lead): without those locks two presses read the token unused
and both grant, audit and note.
"""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from tests.test_http_consent import audit_tail, link, submit_and_mail

pytestmark = pytest.mark.http

PRESSES = 8


def _press_together(http, path: str) -> list:
    clients = [http.fresh_client() for _ in range(PRESSES)]
    start = threading.Barrier(PRESSES)

    def press(client):
        start.wait(timeout=10)
        return client.post(path, headers={"Accept": "application/json"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=PRESSES) as pool:
        return list(pool.map(press, clients))


def _status_changes(http, address: str) -> int:
    return http.sql(
        "select count(*) from app.lead_interactions as i join app.leads as l on l.id = i.lead_id"
        " where l.email = %s and i.kind = 'status_change'",
        (address,),
    )[0][0]


def test_a_confirm_link_pressed_by_many_at_once_confirms_once(http, tmp_path):
    address, message = submit_and_mail(http, tmp_path)
    audit_before, notes_before = len(audit_tail(http, address)), _status_changes(http, address)
    answers = _press_together(http, link(message, "confirm"))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [404] * (PRESSES - 1), [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 404} == {"CHC01"}
    audit = audit_tail(http, address)
    assert len(audit) == audit_before + 1 and audit[-1][:2] == (True, "email_confirmation")
    assert _status_changes(http, address) == notes_before + 1
    assert http.sql("select marketing_consent from app.leads where email = %s", (address,)) == [(True,)]


def test_a_withdraw_link_used_by_many_at_once_withdraws_once(http, tmp_path):
    address, message = submit_and_mail(http, tmp_path)
    assert http.fresh_client().post(link(message, "confirm")).status_code == 200
    audit_before, notes_before = len(audit_tail(http, address)), _status_changes(http, address)
    answers = _press_together(http, link(message, "withdraw"))
    assert [a.status_code for a in answers] == [200] * PRESSES, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"withdrawn"}
    audit = audit_tail(http, address)
    assert len(audit) == audit_before + 1 and audit[-1][:2] == (False, "unsubscribe_link")
    assert _status_changes(http, address) == notes_before + 1
    assert http.sql("select marketing_consent from app.leads where email = %s", (address,)) == [(False,)]
