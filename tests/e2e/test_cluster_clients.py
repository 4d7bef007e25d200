"""A client's budget held by two workers of `scripts/cluster` as one, end to end with real TLS and the official SDK:
the workers share one figure per client through the Redis it starts (rewrite/state/redis/clients.py), so a budget of
N answers' cost admits N requests in all, whichever worker takes each, and both workers' status pages show what the
fake vendor billed."""

from __future__ import annotations

import time

import openai
import pytest

from tests.support.cluster import Cluster
from tests.support.fake_vendor import INPUT_TOKENS
from tests.support.harness import default_config, merge

pytestmark = pytest.mark.e2e

N = 3  # answers the budget pays for
CLIENT = {"name": "ci", "key": "rk-ci-Cluster-0001-aaaaaaaa", "budget": {"dollars": N, "per": "day"}}
PRICES = {"*": {"input": 1_000_000 / INPUT_TOKENS, "output": 1}}  # each answer: $1 for its input, $1e-6 an output


def ask(cluster: Cluster, worker: int) -> openai.types.chat.ChatCompletion | openai.RateLimitError:
    """One request of the client, to one worker (its loopback port: which worker serves is the test's choice)."""
    with cluster.client(worker) as http_client:
        client = openai.OpenAI(api_key=CLIENT["key"], http_client=http_client, max_retries=0)
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        except openai.RateLimitError as e:
            return e


def shown(cluster: Cluster, worker: int) -> list[dict]:
    with cluster.client(worker) as http_client:
        page = http_client.get("http://rotator.status/?format=json", headers={"x-api-key": CLIENT["key"]}).json()
    return page["clients"]


@pytest.fixture
def cluster(fake_vendor, tmp_path, request):
    config = merge(default_config(fake_vendor.url), {"clients": [CLIENT], "prices": PRICES})
    request.node._clusters = [Cluster(tmp_path, config)]
    started = request.node._clusters[0].start()
    yield started
    started.stop()


def test_two_workers_admit_a_budget_of_n_answers_cost_n_requests_in_all(cluster, fake_vendor):
    outcomes = [ask(cluster, 1 + n % 2) for n in range(2 * N + 2)]  # (the workers in turn)

    answered = [o for o in outcomes if not isinstance(o, openai.RateLimitError)]
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert len(answered) == N and len(fake_vendor.requests) == N  # (a worker counting alone would admit N each)
    assert all(o is outcomes[i] for i, o in enumerate(answered))  # (the first N, on both workers)
    for e in refused:
        assert e.status_code == 429 and "client ci is over its budget of $3 per day" in e.message
        assert 0 < int(e.response.headers["retry-after"]) <= 86400
    cost = sum(a.usage.prompt_tokens / INPUT_TOKENS + a.usage.completion_tokens / 1e6 for a in answered)
    out = sum(a.usage.completion_tokens for a in answered)
    for worker in (1, 2):  # (each reads every worker's figures about once a second)
        deadline = time.monotonic() + 10
        while (rows := shown(cluster, worker)) and rows[0]["total"]["requests"] < N and time.monotonic() < deadline:
            time.sleep(0.2)
        [row] = rows
        assert (row["client"], row["provider"], row["model"]) == ("ci", "openai", "gpt-4o-mini")
        assert (row["total"]["requests"], row["day"]["requests"]) == (N, N)
        assert (row["total"]["input_tokens"], row["total"]["output_tokens"]) == (N * INPUT_TOKENS, out)
        assert row["total"]["cost"] == pytest.approx(cost)
    assert "Traceback" not in cluster.output() and CLIENT["key"] not in cluster.output()
