"""The stand-in API server's datastore file (Store.persist): what reaches it and when."""
from __future__ import annotations

import json
import threading

from standins.k3s import apiserver


def test_deferred_save_writes_the_state_once_at_the_end(tmp_path):
    """Store.deferred_save (what the helm-controller wraps an install in): the thread's writes reach the state file at
    the end of the block, all of them; another thread's write inside the block is saved at once, as before."""
    state = tmp_path / "state.json"
    store = apiserver.Store(state)
    configmaps = store.find("", "v1", "configmaps")

    def saved() -> set:
        return {o["metadata"]["name"] for o in json.loads(state.read_text(encoding="utf-8"))["objects"] if o["__plural"] == "configmaps"}

    with store.deferred_save():
        store.create(configmaps, {"metadata": {"name": "first", "namespace": "default"}}, "default")
        store.create(configmaps, {"metadata": {"name": "second", "namespace": "default"}}, "default")
        assert saved() == set()
        other = threading.Thread(target=store.create, args=(configmaps, {"metadata": {"name": "other", "namespace": "default"}}, "default"))
        other.start()
        other.join()
        assert saved() == {"first", "second", "other"}  # the other thread saved the whole store
        store.create(configmaps, {"metadata": {"name": "third", "namespace": "default"}}, "default")
        assert "third" not in saved()
    assert saved() == {"first", "second", "other", "third"}
    assert {o["metadata"]["name"] for o in apiserver.Store(state).list(configmaps, "default")} >= {"first", "third"}
