"""Logo materials per accessibility theme (issue 15) through the PostgREST-request helper: the
GET for one theme or all, its ETag and Cache-Control, 304 for a matching If-None-Match, and the
admin edit (validated, merged into the stored settings)."""

from __future__ import annotations

import pytest

GET = "/api/logo-materials"


def test_every_theme_has_a_material_and_one_theme_can_be_asked_for(api):
    every = api.get(GET)
    assert every.status == 200
    assert [m["theme"] for m in every.body["materials"]] == sorted(
        ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"])
    one = api.get(GET + "?theme=achromatopsia").body
    assert one["theme"] == "achromatopsia" and one["material"]["baseColor"] == "#404040"


def test_the_answer_carries_an_etag_and_the_max_age_stored_as_data(api, db):
    response = api.get(GET + "?theme=default")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"] == api.get(GET + "?theme=default").headers["ETag"]
    assert response.headers["ETag"] != api.get(GET + "?theme=tritanopia").headers["ETag"]
    db.execute("update app.settings set value = '5' where key = 'logo_materials_max_age'")
    assert api.get(GET).headers["Cache-Control"] == "public, max-age=5"


@pytest.mark.parametrize("header", ['{etag}', 'W/{etag}', '"other", {etag}', '*'])
def test_a_matching_if_none_match_is_304_without_a_body(api, header):
    etag = api.get(GET + "?theme=default").headers["ETag"]
    response = api.get(GET + "?theme=default", headers={"If-None-Match": header.format(etag=etag)})
    assert (response.status, response.body, response.headers["ETag"]) == (304, None, etag)


def test_an_edit_changes_the_answer_and_its_etag_and_keeps_the_other_settings(api, admin):
    before = api.get(GET + "?theme=protanopia")
    edit = api.post(GET, {"theme": "protanopia", "material": {"roughness": 0.8, "wireframe": True}}, api_key=admin)
    assert edit.status == 200 and edit.body["material"]["roughness"] == 0.8
    after = api.get(GET + "?theme=protanopia")
    assert after.body["material"] == {**before.body["material"], "roughness": 0.8, "wireframe": True}
    assert after.headers["ETag"] != before.headers["ETag"]
    stale = api.get(GET + "?theme=protanopia", headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"theme": "sepia", "material": {}}, "theme"),
        ({"theme": "default", "material": {"baseColor": "red"}}, "material.baseColor"),
        ({"theme": "default", "material": {"metalness": 1.5}}, "material.metalness"),
        ({"theme": "default", "material": {"shininess": 3}}, "material.shininess"),
        ({"theme": "default", "material": {"wireframe": "yes"}}, "material.wireframe"),
        ({"theme": "default"}, "material"),
    ],
)
def test_a_bad_edit_names_the_field_and_changes_nothing(api, db, admin, body, field):
    before = db.execute("select jsonb_agg(material order by accessibility_theme) from app.logo_materials").fetchone()[0]
    response = api.post(GET, body, api_key=admin)
    assert response.status == 400 and field in {e["field"] for e in response.body["errors"]}
    assert db.execute("select jsonb_agg(material order by accessibility_theme) from app.logo_materials").fetchone()[0] == before


@pytest.mark.parametrize("who, status", [(None, 401), ("reader", 403)])
def test_editing_needs_an_admin_key(api, make_key, who, status):
    assert api.post(GET, {"theme": "default", "material": {}}, api_key=make_key(who) if who else None).status == status


@pytest.mark.parametrize("query, field", [("?theme=sepia", "theme"), ("?colour=red", "colour"), ("?theme=%FF", "theme")])
def test_a_bad_query_is_named(api, query, field):
    response = api.get(GET + query)
    assert response.status == 400 and field in {e["field"] for e in response.body["errors"]}
