"""The real MLflow client against Gatehouse's MLflow Model Registry API.

Run by scripts/test-mlflow, which starts `gatehouse serve --demo` with
CREDIT as the MLflow default project and sets MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_TOKEN (an admin token) and GATEHOUSE_URL.
"""

import base64
import os
import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

URL = os.environ["GATEHOUSE_URL"]
ADMIN_TOKEN = os.environ["MLFLOW_TRACKING_TOKEN"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def token_of(user):
    r = requests.post(
        f"{URL}/api/v1/tokens",
        json={"username": user, "password": f"demo-{user}", "name": "mlflow-tests"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["token"]


def api(method, path, token=ADMIN_TOKEN, **kw):
    return requests.request(
        method,
        f"{URL}/api/v1{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kw,
    )


def error_code(excinfo):
    return excinfo.value.error_code


@pytest.fixture(scope="session")
def client():
    return MlflowClient()


@pytest.fixture(scope="session")
def bound_prod_alias():
    """Alias `prod` of project CREDIT is bound to prod-api (policy prevent)."""
    r = api("POST", "/mlflow/bindings", json={"alias": "prod", "infrastructure": "prod-api", "project": "CREDIT"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="session")
def bound_staging_stage():
    """Stage `Staging` of every project is bound to qa-api (policy warn)."""
    r = api("POST", "/mlflow/bindings", json={"stage": "staging", "infrastructure": "qa-api"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Staging"
    return r.json()


def approve_prod(model, version):
    """The CREDIT prod sign-off: admin requests, rita (Risk & Compliance)
    approves her feedback slot, quinn gives the final approval."""
    base = f"/projects/CREDIT/models/{model}/versions/{version}/signoffs/prod"
    r = api("POST", f"{base}/request", json={})
    assert r.status_code == 200, r.text
    slots = {s["kind"]: s["id"] for s in r.json().get("slots", [])}
    feedback_slot = slots.get("feedback", 1)
    r = api("POST", f"{base}/feedback", token=token_of("rita"), json={"slot": feedback_slot, "verdict": "approve"})
    assert r.status_code == 200, r.text
    r = api("POST", f"{base}/decide", token=token_of("quinn"), json={"decision": "approve"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"


def audit_actions(subject):
    r = api("GET", "/audit/events", params={"subject": subject, "limit": 500})
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


# --- registry basics ----------------------------------------------------------------


def test_create_get_update_registered_model(client):
    name = unique("basic")
    m = client.create_registered_model(name, tags={"team": "risk"}, description="first")
    assert m.name == name
    assert m.tags["team"] == "risk"
    assert m.tags["gatehouse.project"] == "CREDIT"
    client.update_registered_model(name, description="second")
    assert client.get_registered_model(name).description == "second"


def test_register_model_creates_versions_that_are_ready(client):
    name = unique("reg")
    v1 = mlflow.register_model("s3://bucket/models/a", name)
    v2 = mlflow.register_model("s3://bucket/models/b", name)
    assert (v1.version, v2.version) == ("1", "2")
    got = client.get_model_version(name, "2")
    assert got.status == "READY"
    assert got.source == "s3://bucket/models/b"
    assert client.get_model_version_download_uri(name, "1") == "s3://bucket/models/a"


def test_version_fields_tags_and_governance_tags(client):
    name = unique("fields")
    client.create_registered_model(name)
    mv = client.create_model_version(
        name, "s3://bucket/x", run_id="run123", run_link="http://mlflow/run123", tags={"k": "v"}, description="d"
    )
    got = client.get_model_version(name, mv.version)
    assert got.run_id == "run123"
    assert got.run_link == "http://mlflow/run123"
    assert got.description == "d"
    assert got.tags["k"] == "v"
    assert got.tags["gatehouse.subject"] == f"version:CREDIT/{name}/1"
    assert got.tags["gatehouse.signoff.prod"] == "not_started"
    client.set_model_version_tag(name, "1", "stage-note", "ok")
    client.delete_model_version_tag(name, "1", "k")
    tags = client.get_model_version(name, "1").tags
    assert tags["stage-note"] == "ok" and "k" not in tags
    client.update_model_version(name, "1", description="new")
    assert client.get_model_version(name, "1").description == "new"


def test_governance_tags_are_read_only(client):
    name = unique("ro")
    mlflow.register_model("s3://bucket/ro", name)
    with pytest.raises(MlflowException) as e:
        client.set_model_version_tag(name, "1", "gatehouse.signoff.prod", "approved")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_tag(name, "gatehouse.project", "FRAUD")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    assert client.get_model_version(name, "1").tags["gatehouse.signoff.prod"] == "not_started"


def test_registered_model_tags(client):
    name = unique("tags")
    client.create_registered_model(name)
    client.set_registered_model_tag(name, "owner", "risk-team")
    assert client.get_registered_model(name).tags["owner"] == "risk-team"
    client.delete_registered_model_tag(name, "owner")
    assert "owner" not in client.get_registered_model(name).tags


def test_search_registered_models_with_filters_and_paging(client):
    prefix = unique("search")
    for i in range(5):
        client.create_registered_model(f"{prefix}-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert [m.name for m in found] == [f"{prefix}-{i}" for i in range(5)]
    even = client.search_registered_models(filter_string=f"name LIKE '{prefix}%' AND tags.parity = 'even'")
    assert [m.name for m in even] == [f"{prefix}-0", f"{prefix}-2", f"{prefix}-4"]
    exact = client.search_registered_models(filter_string=f"name = '{prefix}-3'")
    assert [m.name for m in exact] == [f"{prefix}-3"]
    page1 = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"]
    )
    assert [m.name for m in page1] == [f"{prefix}-4", f"{prefix}-3"]
    assert page1.token
    page2 = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"], page_token=page1.token
    )
    assert [m.name for m in page2] == [f"{prefix}-2", f"{prefix}-1"]
    page3 = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"], page_token=page2.token
    )
    assert [m.name for m in page3] == [f"{prefix}-0"]
    assert not page3.token


def test_search_model_versions(client):
    name = unique("mv")
    for i in range(4):
        mlflow.register_model(f"s3://bucket/{name}/{i}", name)
    client.set_model_version_tag(name, "2", "flavour", "sklearn")
    all_versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in all_versions) == [1, 2, 3, 4]
    tagged = client.search_model_versions(f"name = '{name}' AND tags.flavour = 'sklearn'")
    assert [v.version for v in tagged] == ["2"]
    by_source = client.search_model_versions(f"source_path = 's3://bucket/{name}/3'")
    assert [v.version for v in by_source] == ["4"]
    numbered = client.search_model_versions(f"name = '{name}' AND version_number >= 3", order_by=["version_number ASC"])
    assert [v.version for v in numbered] == ["3", "4"]
    paged = client.search_model_versions(f"name = '{name}'", max_results=3, order_by=["version_number ASC"])
    assert [v.version for v in paged] == ["1", "2", "3"]
    assert paged.token


def test_search_model_versions_by_run_id(client):
    name = unique("runs")
    client.create_registered_model(name)
    client.create_model_version(name, "s3://bucket/r1", run_id="run-a")
    client.create_model_version(name, "s3://bucket/r2", run_id="run-b")
    found = client.search_model_versions(f"run_id = 'run-b' AND name = '{name}'")
    assert [v.version for v in found] == ["2"]


def test_unbound_alias_is_a_plain_label(client):
    name = unique("alias")
    mlflow.register_model("s3://bucket/a1", name)
    mlflow.register_model("s3://bucket/a2", name)
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    assert client.get_model_version(name, "1").aliases == ["champion"]
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "champion")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"


def test_legacy_stages_and_latest_versions(client):
    name = unique("stages")
    for i in range(3):
        mlflow.register_model(f"s3://bucket/s{i}", name)
    client.transition_model_version_stage(name, "1", "production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Production"
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "3", "Prod")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"


def test_rename_and_delete(client):
    name = unique("rename")
    mlflow.register_model("s3://bucket/r", name)
    new = unique("renamed")
    client.rename_registered_model(name, new)
    assert client.get_model_version(new, "1").source == "s3://bucket/r"
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_model_version(new, "1")
    client.delete_registered_model(new)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(new)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_missing_objects_raise_mlflows_error_codes(client):
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(unique("missing"))
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    name = unique("exists")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "99")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        client.create_model_version(name, "/tmp/local/model")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"


def test_a_name_in_two_projects_is_ambiguous_unless_the_default_project_holds_it(client):
    name = unique("dup")
    client.create_registered_model(name, tags={"gatehouse.project": "FRAUD"})
    client.create_registered_model(name, tags={"gatehouse.project": "CHURN"})
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert error_code(e) == "RESOURCE_CONFLICT"
    assert "ambiguous" in e.value.message
    client.create_registered_model(name, tags={"gatehouse.project": "CREDIT"})
    assert client.get_registered_model(name).tags["gatehouse.project"] == "CREDIT"


def test_basic_auth_with_the_token_as_password():
    r = requests.get(
        f"{URL}/api/2.0/mlflow/registered-models/search",
        headers={"Authorization": "Basic " + base64.b64encode(f"anyone:{ADMIN_TOKEN}".encode()).decode()},
        timeout=30,
    )
    assert r.status_code == 200
    r = requests.get(f"{URL}/api/2.0/mlflow/registered-models/search", timeout=30)
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


# --- governance -----------------------------------------------------------------


def test_bound_alias_deploys_through_the_gate(client, bound_prod_alias):
    name = unique("gov")
    mlflow.register_model("s3://bucket/gov/1", name)
    subject = f"version:CREDIT/{name}/1"
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "prod", "1")
    assert error_code(e) == "PERMISSION_DENIED"
    assert "prod-api" in e.value.message and "open slots" in e.value.message
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "prod")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    approve_prod(name, 1)
    assert client.get_model_version(name, "1").tags["gatehouse.signoff.prod"] == "approved"
    client.set_registered_model_alias(name, "prod", "1")
    assert client.get_model_version_by_alias(name, "prod").version == "1"

    live = api("GET", "/infrastructures/prod-api/live", params={"slot": f"CREDIT/{name}"}).json()["items"]
    assert [d["subject"] for d in live] == [subject]
    actions = audit_actions(subject)
    assert "deployment.refused" in actions and "deployment.deploy" in actions

    # A governed model keeps its name and its versions.
    with pytest.raises(MlflowException) as e:
        client.rename_registered_model(name, unique("other"))
    assert error_code(e) == "RESOURCE_CONFLICT"
    with pytest.raises(MlflowException) as e:
        client.delete_model_version(name, "1")
    assert error_code(e) == "RESOURCE_CONFLICT"
    with pytest.raises(MlflowException) as e:
        client.delete_registered_model(name)
    assert error_code(e) == "RESOURCE_CONFLICT"

    # Version 2 goes live through the alias; a rollback in Gatehouse moves the alias back.
    mlflow.register_model("s3://bucket/gov/2", name)
    approve_prod(name, 2)
    client.set_registered_model_alias(name, "prod", "2")
    assert client.get_model_version_by_alias(name, "prod").version == "2"
    r = api("POST", "/infrastructures/prod-api/rollback", json={"slot": f"CREDIT/{name}"})
    assert r.status_code == 201, r.text
    assert client.get_model_version_by_alias(name, "prod").version == "1"
    assert client.get_registered_model(name).aliases["prod"] == "1"


def test_bound_stage_follows_its_slot_and_a_rollback_moves_it_back(client, bound_staging_stage):
    name = unique("stage-rb")
    for i in (1, 2):
        mlflow.register_model(f"s3://bucket/stage-rb/{i}", name)
        client.set_model_version_tag(name, str(i), "gatehouse.deploy.confirm", "qa-api")
        assert client.transition_model_version_stage(name, str(i), "Staging").current_stage == "Staging"
    # Both were moved to Staging, but the qa-api slot holds version 2 only.
    assert client.get_model_version(name, "1").current_stage == "None"
    assert client.get_model_version(name, "2").current_stage == "Staging"
    # A rollback in Gatehouse moves the stage back to version 1.
    r = api("POST", "/infrastructures/qa-api/rollback", json={"slot": f"CREDIT/{name}", "confirm": True})
    assert r.status_code == 201, r.text
    assert client.get_model_version(name, "1").current_stage == "Staging"
    assert client.get_model_version(name, "2").current_stage == "None"
    assert [v.version for v in client.get_latest_versions(name, stages=["Staging"])] == ["1"]
    found = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    assert found == {"1": "Staging", "2": "None"}


def test_bound_stage_under_warn_needs_the_confirmation_tag(client, bound_staging_stage):
    name = unique("warn")
    mlflow.register_model("s3://bucket/warn/1", name)
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "1", "Staging")
    assert error_code(e) == "RESOURCE_CONFLICT"
    assert "gatehouse.deploy.confirm=qa-api" in e.value.message
    assert client.get_model_version(name, "1").current_stage == "None"
    client.set_model_version_tag(name, "1", "gatehouse.deploy.confirm", "qa-api")
    mv = client.transition_model_version_stage(name, "1", "Staging")
    assert mv.current_stage == "Staging"
    assert "gatehouse.deploy.confirm" not in client.get_model_version(name, "1").tags
    live = api("GET", "/infrastructures/qa-api/live", params={"slot": f"CREDIT/{name}"}).json()["items"]
    assert live[0]["warning"]
