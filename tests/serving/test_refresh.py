"""Refresher: update vs scratch mode, what it records, and interactions that arrive mid-generation."""

from __future__ import annotations

from bump_profiles.prompts import ProfilePrompt
from bump_profiles.refresh import Refresher
from bump_profiles.store import NewInteraction, ProfileStore
from serving.fakes import EchoBackend


def test_scratch_mode_regenerates_from_everything(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = EchoBackend()
    r = Refresher(store, backend, mode="scratch", scratch_prompt=ProfilePrompt(history_items=2))
    seqs = store.add_interactions("u", [NewInteraction("alpha"), NewInteraction("beta"), NewInteraction("gamma")])
    v1 = r.refresh("u")
    assert v1.mode == "scratch" and v1.source_seqs == seqs[1:] and v1.through_seq == seqs[-1]  # item budget: newest 2
    assert r.refresh("u") is None  # nothing new: no version, no generation
    assert len(backend.prompts) == 1
    store.add_interactions("u", [NewInteraction("delta")])
    v2 = r.refresh("u")
    assert (v2.version, v2.mode, v2.previous_version) == (2, "scratch", 1)
    assert "gamma" in backend.prompts[-1] and "delta" in backend.prompts[-1] and v1.text not in backend.prompts[-1]


def test_interactions_written_during_generation_stay_new(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))

    class Interleaving(EchoBackend):
        def complete(self, messages_batch, **kw):
            store.add_interactions("u", [NewInteraction("arrived while generating")])
            return super().complete(messages_batch, **kw)

    r = Refresher(store, Interleaving())
    store.add_interactions("u", [NewInteraction("first")])
    v1 = r.refresh("u")
    late = store.interactions("u", after_seq=v1.through_seq)
    assert [i.text for i in late] == ["arrived while generating"]
    assert store.stale_users(min_new=1) == ["u"]
