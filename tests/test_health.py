"""The walking skeleton: the health endpoint answers through the PostgREST request path."""


def test_leads_health_is_ok_without_a_key(api):
    response = api.get("/api/leads/health")
    assert response.status == 200
    assert response.body["status"] == "ok"


def test_a_wrong_api_key_is_refused_with_401(api):
    response = api.get("/api/leads/health", api_key="chk_not-a-key")
    assert response.status == 401
    assert response.body["code"] == "CHK01"
    assert "X-API-Key" in response.body["message"]


def test_a_valid_key_switches_the_role(api, make_key, db):
    key = make_key("reader")
    response = api.get("/api/leads/health", api_key=key)
    assert response.status == 200
