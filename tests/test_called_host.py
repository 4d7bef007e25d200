"""The host a flow's client called, read once per state of the request for the hooks that ask for it."""

from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy.test import tflow

from addons.masking import called_host


def test_the_called_host_follows_the_request_as_it_changes():
    flow = tflow.tflow()
    flow.request.headers["host"] = "API.example.com:443"
    assert called_host(flow) == flow.request.pretty_host == "API.example.com"
    flow.request.headers["host"] = "other.example"  # (e.g. another addon's rewrite between two hooks)
    assert called_host(flow) == "other.example"
    del flow.request.headers["host"]
    flow.request.host = "third.example"
    assert called_host(flow) == "third.example"


def test_it_is_kept_beside_the_flow_never_on_it_nor_in_what_is_saved():
    flow = tflow.tflow()
    attributes, state = dict(vars(flow)), flow.get_state()
    called_host(flow)
    assert vars(flow) == attributes and flow.get_state() == state


@settings(max_examples=300, deadline=None)
@given(host=st.text(st.sampled_from("aZ09.-_:[]@ éxn"), max_size=20),
       port=st.sampled_from(["", ":443", ":8080", ":99999", ":x"]))
def test_it_is_what_mitmproxy_calls_the_pretty_host(host, port):
    flow = tflow.tflow()
    flow.request.headers["host"] = host + port
    assert called_host(flow) == flow.request.pretty_host
