"""The cloud platforms' keys in the config (rewrite/providers/azure.py, vertex.py, bedrock.py): what each takes, and
one line naming the field for what it cannot use, before the proxy listens."""

from __future__ import annotations

import pytest

from protocols.platforms.google_auth import ServiceAccount
from rewrite.config import ConfigError, parse
from rewrite.providers.azure import Resource
from rewrite.providers.signer import CloudKey
from rewrite.routing.router import Router
from tests.support.cloud_auth import CloudAccounts


def build(text: str) -> Router:
    return Router(parse(text))


def test_azure_keys_carry_their_resource_and_deployments():
    router = build("""
providers:
  azure:
    keys:
      - {key: k-a, endpoint: https://res-a.openai.azure.com, deployments: {gpt-5.1: prod-a}}
      - {key: k-b, endpoint: "https://res-b.openai.azure.com/", deployments: {gpt-5.1: prod-b}}
""")
    azure = router.provider_named("azure")

    assert azure.pool is not None and azure.pool.keys == ["k-a", "k-b"]
    assert azure.held["k-b"] == Resource("res-b.openai.azure.com", {"gpt-5.1": "prod-b"})
    assert azure.envelope.opened("/openai/deployments/prod-b/chat/completions", {})[1]["model"] == "gpt-5.1"


def test_vertex_service_accounts_are_read_at_start_up_and_named_by_their_key_id(tmp_path):
    sa = CloudAccounts().service_account("proj-a")
    router = build(f"providers: {{vertex: {{keys: [{{service_account: '{sa.write(tmp_path / 'sa.json')}'}}], "
                   "regions: [us-east5, global]}}")
    vertex = router.provider_named("vertex")

    assert vertex.pool.keys == [sa.key_id]
    assert isinstance(vertex.held[sa.key_id], ServiceAccount) and vertex.held[sa.key_id].project == "proj-a"
    assert vertex.regions == ("us-east5", "global")


def test_bedrock_keys_are_pooled_in_each_region_they_serve():
    router = build("""
providers:
  bedrock:
    keys:
      - {access_key_id: AKIDA, secret_access_key: secret-a, session_token: tok}
      - {bearer: ABSKkey, region: eu-west-1}
    regions: [us-east-1, us-west-2]
""")
    bedrock = router.provider_named("bedrock")

    assert bedrock.pool.keys == ["AKIDA@us-east-1", "AKIDA@us-west-2", "ABSKkey@eu-west-1"]
    assert bedrock.held["AKIDA@us-west-2"] == CloudKey("AKIDA", "us-west-2", "secret-a", "tok")
    assert bedrock.held["ABSKkey@eu-west-1"] == CloudKey("ABSKkey", "eu-west-1", bearer=True)
    assert bedrock.regions == ("us-east-1", "us-west-2") and bedrock.signers is not None


def test_a_platforms_other_calls_are_left_alone_unless_it_signs_them():
    router = build("{}")

    count = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
    assert router.route("us-east5-aiplatform.googleapis.com", "POST", count) is None
    assert router.route("res.openai.azure.com", "POST", "/openai/deployments/d/embeddings") is None
    signed = router.route("bedrock-runtime.us-east-1.amazonaws.com", "POST", "/model/m/count-tokens")
    assert signed is not None and signed.provider.name == "bedrock" and signed.protocol is None


@pytest.mark.parametrize(("text", "said"), [
    ("providers: {vertex: {keys: [{service_account: /nonexistent/sa.json}]}}",
     r"^providers\.vertex\.keys\.0\.service_account: cannot read /nonexistent/sa\.json: No such file or directory$"),
    ("providers: {vertex: {keys: [{service_account: KEYFILE}]}}",
     r"^providers\.vertex\.keys\.0\.service_account: .*not-json\.json is not JSON$"),
    ("providers: {vertex: {keys: [sk-plain]}}", r"^providers\.vertex\.keys\.0\.key: a vertex key is a service account"),
    ("providers: {azure: {keys: [k-a]}}", r"^providers\.azure\.keys\.0\.endpoint: required"),
    ("providers: {azure: {keys: [{key: k, endpoint: 'https://r.openai.azure.com/openai'}]}}",
     r"^providers\.azure\.keys\.0\.endpoint: .*must be https://HOST"),
    ("providers: {azure: {keys: [{key: k, endpoint: 'https://r.openai.azure.com', deployments: {m: 'a/b'}}]}}",
     r"^providers\.azure\.keys\.0\.deployments: .*without spaces"),
    ("providers: {azure: {regions: [eastus]}}", r"^providers\.azure\.regions: "),
    ("providers: {openai: {keys: [{key: k, endpoint: 'https://r.openai.azure.com'}]}}",
     r"^providers\.openai\.keys\.0\.endpoint: only the keys of a cloud platform"),
    ("providers: {openai: {regions: [us]}}", r"^providers\.openai\.regions: only a cloud platform"),
    ("providers: {vertex: {regions: [US East]}}", r"^providers\.vertex\.regions\.0: "),
    ("providers: {openai: {keys: [{weight: 2}]}}", r"^providers\.openai\.keys\.0\.key: Field required"),
    ("providers: {openai: {keys: [{key: k, service_account: /x}]}}", r"^providers\.openai\.keys\.0: .*not both"),
    ("providers: {openai: {keys: [{access_key_id: AKIDA, secret_access_key: s}]}}",
     r"^providers\.openai\.keys\.0\.access_key_id: only the keys of a cloud platform have one \(bedrock takes it\)$"),
    ("providers: {anthropic: {regions: [us-east-1]}}",
     r"^providers\.anthropic\.regions: only a cloud platform's provider has regions \(bedrock and vertex take it\)$"),
    ("providers: {vertex: {keys: [{bearer: ABSKkey}]}}", r"^providers\.vertex\.keys\.0\.bearer: vertex's keys have none"),
    ("providers: {azure: {keys: [{key: k, endpoint: 'https://r.openai.azure.com', region: us-east-1}]}}",
     r"^providers\.azure\.keys\.0\.region: azure's keys have none \(bedrock takes it\)$"),
    ("providers: {bedrock: {keys: [{service_account: /x}]}}",
     r"^providers\.bedrock\.keys\.0\.service_account: bedrock's keys have none \(vertex takes it\)$"),
    ("providers: {bedrock: {keys: [{key: k, endpoint: 'https://r.openai.azure.com'}]}}",
     r"^providers\.bedrock\.keys\.0\.endpoint: bedrock's keys have none \(azure takes it\)$"),
    ("providers: {bedrock: {keys: [{key: k, project: p}]}}", r"^providers\.bedrock\.keys\.0\.project: a bedrock key is AWS"),
    ("providers: {bedrock: {regions: [global]}}", r"^providers\.bedrock\.regions\.0: 'global' is not an AWS region"),
    ("providers: {bedrock: {keys: [{access_key_id: AKIDA}]}}", r"^providers\.bedrock\.keys\.0: .*secret_access_key"),
    ("providers: {bedrock: {keys: [{key: k, bearer: b}]}}", r"^providers\.bedrock\.keys\.0: .*not both `key` and `bearer`"),
])
def test_a_key_a_platform_cannot_use_stops_start_up_naming_the_field(text, said, tmp_path):
    bad = tmp_path / "not-json.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=said) as e:
        build(text.replace("KEYFILE", str(bad)))
    assert "\n" not in str(e.value)


def test_a_platforms_models_are_known_from_each_vendor_it_serves():
    vertex = build("{}").provider_named("vertex")

    claude, gemini = vertex.models.get("claude-sonnet-4-5@20250929"), vertex.models.get("gemini-2.5-flash")

    assert claude.known and claude.prefill  # (a cut Claude answer is continued by prefill, as on Anthropic's API)
    assert gemini.known
