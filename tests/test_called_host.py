"""The host a flow's client called, read once per state of the request for the hooks that ask for it."""

from mitmproxy.test import tflow

from addons.interception import called_host


def test_the_called_host_follows_the_request_as_it_changes():
    flow = tflow.tflow()
    flow.request.headers["host"] = "API.example.com:443"
    assert called_host(flow) == flow.request.pretty_host == "API.example.com"
    flow.request.headers["host"] = "other.example"  # (e.g. another addon's rewrite between two hooks)
    assert called_host(flow) == "other.example"
    del flow.request.headers["host"]
    flow.request.host = "third.example"
    assert called_host(flow) == "third.example"


def test_it_is_never_saved_with_the_flow():
    flow = tflow.tflow()
    called_host(flow)
    assert "_rotator_called_host" not in str(flow.get_state())
