"""kopf set up to write nothing and skip what only change handlers need."""

from __future__ import annotations

import kopf
from kopf._cogs.clients import api as kopf_api

from conveyor import kopf_setup


def test_the_pinned_kopf_decodes_watch_streams_where_we_replace_the_decoder():
    """If a kopf upgrade moves the decoder, this fails instead of silently losing the speed-up."""
    assert kopf_setup.decode_watch_streams_with_orjson()
    line = b'{"type": "ADDED", "object": {"metadata": {"name": "a\\u00e9"}}}'
    assert kopf_api.json.loads(line.decode("utf-8")) == {
        "type": "ADDED",
        "object": {"metadata": {"name": "aé"}},
    }


def test_kopf_builds_no_diff_base_and_writes_nothing_of_its_own():
    """The diff base kopf builds per event is empty, and kopf posts and scans nothing."""
    settings = kopf.OperatorSettings()
    kopf_setup.configure(settings, watch_namespaces=False)
    body = kopf.Body({"metadata": {"name": "x", "namespace": "n"}, "spec": {"a": [1, 2]}})
    storage = settings.persistence.diffbase_storage
    assert storage.fetch(body=body) is None
    assert storage.build(body=body) == {}
    assert settings.scanning.disabled
    assert not settings.posting.enabled
