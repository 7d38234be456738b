"""Refresher: update vs scratch mode, what it records, and interactions that arrive mid-generation."""

from __future__ import annotations

from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.refresh import Refresher
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


def test_an_update_over_a_backlog_reads_every_new_interaction(tmp_path):
    """300 new items and a prompt that shows 20 within 400 tokens. The update is
    chained over the backlog, oldest first, one version per chunk: every new interaction is shown to
    the generator once, and each version's ``through_seq`` is the last item it was shown."""
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = EchoBackend()
    r = Refresher(store, backend, update_prompt=UpdatePrompt(history_items=20, history_tokens=400))
    store.add_interactions("u", [NewInteraction("first words")])
    v1 = r.refresh("u")
    backlog = store.add_interactions("u", [NewInteraction(f"item {k} " + "word " * (k % 40)) for k in range(300)])
    last = r.refresh("u")
    versions = store.profile_history("u")[1:]
    shown = [s for v in versions for s in v.source_seqs]
    assert shown == backlog  # each once, in order
    assert last.through_seq == backlog[-1] and last.version == versions[-1].version
    for prev, v in zip([v1, *versions], versions, strict=False):
        assert (v.mode, v.previous_version, v.through_seq) == ("update", prev.version, v.source_seqs[-1])
        assert v.source_seqs[0] > prev.through_seq
    for prompt, v in zip(backend.prompts[1:], versions, strict=True):  # what was recorded was in the prompt
        assert all(" ".join(i.text.split()) in prompt for i in store.interactions("u") if i.seq in v.source_seqs)


def test_scratch_reads_only_the_newest_items_it_shows(tmp_path):
    """A scratch refresh reads the newest ``history_items`` (not the whole history)
    and records exactly the items that fit its token budget."""
    store = ProfileStore(str(tmp_path / "s.db"))
    seqs = store.add_interactions("u", [NewInteraction(f"item {k} " + "word " * 20) for k in range(50)])
    r = Refresher(store, EchoBackend(), mode="scratch", scratch_prompt=ProfilePrompt(history_items=10, history_tokens=100))
    read: list[int | None] = []
    original = store.interactions
    store.interactions = lambda *a, **kw: read.append(kw.get("limit")) or original(*a, **kw)
    v = r.refresh("u")
    assert read and all(limit is not None and limit <= 10 for limit in read)
    assert v.source_seqs == seqs[-4:] and v.through_seq == seqs[-1]  # 4 lines of 23 words + newlines fit 100
