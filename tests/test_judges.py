"""Judges: config and registry, batching helpers, and each judge's scores (efficient == naive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TINY_CHAT_TEMPLATE, save_tiny, tiny_causal_lm, tiny_tokenizer

from bump_profiles.errors import ConfigError
from bump_profiles.judges import JUDGES, Judge, JudgeConfig, check_direction, make_judge
from bump_profiles.judges import lm as judge_lm
from bump_profiles.judges.embedding import EmbeddingJudge
from bump_profiles.judges.likelihood import LikelihoodJudge
from bump_profiles.judges.lm import DOCUMENT_MARK, cut_prompt, encode, pack_rows, token_batches
from bump_profiles.judges.yesno import NO_WORDS, YES_WORDS, YesNoJudge, answer_token_ids, render
from bump_profiles.profiles.prompts import YESNO_A
from bump_profiles.rewards.task import reader_contexts

PROFILES = ["likes telescope and galaxy a lot", "bakes sourdough", "plays chess openings, gambit and endgame in blitz"]
ITEMS = [
    "comet",
    "Reviewed a guide on oven and flour; loved the part on yeast.",
    "chess opening gambit endgame bishop knight checkmate rook",
    "Shared photos of nebula with orbit, mostly eclipse.",
]
BIG, SMALL = 100_000, 1  # one padded batch per prefix / one row per batch


@pytest.fixture(scope="module")
def tiny():
    """A tiny random Llama with weights large enough that scores differ clearly between pairs."""
    tok = tiny_tokenizer()
    model = tiny_causal_lm(tok, seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return model.eval(), tok


# --- config and registry ---------------------------------------------------------------------------


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ConfigError, match="known kinds are " + ", ".join(JUDGES)):
        JudgeConfig(kind="cross-encoder")
    config = JudgeConfig()
    config.kind = "nope"
    with pytest.raises(ConfigError, match="known kinds"):
        make_judge(config)


@pytest.mark.parametrize("field, value", [("dtype", "int8"), ("calibration", "zscore"), ("batch_tokens", 0)])
def test_bad_config_values_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        JudgeConfig(**{field: value})


def test_default_models_per_kind():
    assert {kind: JudgeConfig(kind=kind).model_name for kind in JUDGES if kind != "ensemble"} == {
        "embedding": "minilm",
        "likelihood": "smollm2-135m",
        "yesno": "smollm2-135m",
        "copymask": "minilm",
        "lexical": "",  # no model: judge.model names its IDF corpus file
    }
    assert JudgeConfig(kind="yesno", model="/some/path").model_name == "/some/path"
    with pytest.raises(ConfigError, match="ensemble judge needs at least 2 members"):  # its members name the models
        JudgeConfig(kind="ensemble")


def test_direction_must_be_a_or_b():
    check_direction("A")
    check_direction("B")
    with pytest.raises(ConfigError, match="direction"):
        check_direction("AB")


# --- batching helpers ------------------------------------------------------------------------------


def test_token_batches_cover_every_index_longest_first_within_budget():
    lengths = [5, 9, 1, 7, 7, 3, 12]
    batches = token_batches(lengths, budget=20)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    for batch in batches:
        # the first row is the longest and sets the padded width
        assert len(batch) == 1 or len(batch) * lengths[batch[0]] <= 20
    # 12 alone (2 * 12 > 20); 9 and 7 (2 * 9 = 18; a third row: 27 > 20); 7 and 5; 3 and 1
    assert [[lengths[i] for i in b] for b in batches] == [[12], [9, 7], [7, 5], [3, 1]]


def test_pack_rows_keep_order_and_fill_each_row_up_to_the_budget():
    lengths = [5, 9, 1, 7, 7, 3, 12, 0]
    rows = pack_rows(lengths, budget=12)
    assert [i for r in rows for i in r] == list(range(len(lengths)))
    # 5 + 9 > 12; 9 + 1; 7 alone (7 + 7 > 12); 7 + 3; 12 fills a row; a longer one sits alone
    assert [[lengths[i] for i in r] for r in rows] == [[5], [9, 1], [7], [7, 3], [12, 0]]
    assert pack_rows([30, 2], budget=12) == [[0], [1]]


def test_cut_prompt_moves_the_gap_to_the_document():
    parts = cut_prompt(f"Profile: x\n\nInteraction: {DOCUMENT_MARK}\n\nAnswer?")
    assert (parts.prefix, parts.gap, parts.tail) == ("Profile: x\n\nInteraction:", " ", "\n\nAnswer?")


# --- embedding judge -------------------------------------------------------------------------------


class CountingEncoder:
    """A sentence-transformers stand-in: bag-of-letters vectors, recording what it was asked to encode."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts, *, batch_size, normalize_embeddings, convert_to_numpy, show_progress_bar):
        self.calls.append(list(texts))
        vectors = np.zeros((len(texts), 26), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    vectors[i, ord(ch) - 97] += 1
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_embedding_judge_is_cosine_encodes_each_text_once_and_is_symmetric():
    encoder = CountingEncoder()
    judge = make_judge(JudgeConfig(kind="embedding"), model=encoder)
    assert isinstance(judge, EmbeddingJudge) and isinstance(judge, Judge) and judge.symmetric
    queries = ["ab", "ba", "zz"]
    documents = ["ab", "ab", "a"]
    matrix = judge.score(queries, documents, "A")
    assert encoder.calls == [["ab", "ba", "zz", "a"]]  # "ab" three times, "ba" once: distinct texts only
    assert matrix.dtype == np.float64 and matrix.shape == (3, 3)
    # "ab" = (1, 1)/sqrt2, "a" = (1, 0): cos 1 with itself and with "ba", 1/sqrt2 with "a", 0 with "zz"
    np.testing.assert_allclose(matrix, [[1, 1, 2**-0.5], [1, 1, 2**-0.5], [0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(judge.score(documents, queries, "B"), matrix.T)
    assert judge.score([], documents, "A").shape == (0, 3)


# --- yes/no judge ----------------------------------------------------------------------------------


def test_yes_no_ids_are_the_first_tokens_after_the_answer_prompt(tiny):
    _, tok = tiny
    prompt = render(tok, "Answer yes or no.")
    for word in ("yes", "Yes", " no"):
        assert answer_token_ids(tok, [word]) == [encode(tok, prompt + word)[len(encode(tok, prompt))]]
    # the tiny BPE merges " no" but not " yes", " Yes" or " No": those start with a bare space token,
    # which says nothing about the answer and is dropped from both sides
    space = encode(tok, " ")[0]
    assert answer_token_ids(tok, YES_WORDS) == [*answer_token_ids(tok, ["yes", "Yes"]), space]
    assert answer_token_ids(tok, NO_WORDS) == [*answer_token_ids(tok, ["no", "No", " no"]), space]
    judge = YesNoJudge(*tiny)
    assert judge.yes_ids == answer_token_ids(tok, ["yes", "Yes"])
    assert judge.no_ids == answer_token_ids(tok, ["no", "No", " no"])


@pytest.mark.parametrize("direction", ["A", "B"])
@pytest.mark.parametrize("budget", [BIG, SMALL])
def test_yesno_efficient_equals_naive(tiny, direction, budget):
    model, tok = tiny
    judge = make_judge(JudgeConfig(kind="yesno", batch_tokens=budget), model=model, tokenizer=tok)
    assert not judge.symmetric
    queries, documents = (PROFILES, ITEMS) if direction == "A" else (ITEMS, PROFILES)
    fast = judge.score(queries, documents, direction)
    naive = judge.score_naive(queries, documents, direction)
    assert fast.shape == (len(queries), len(documents)) and fast.dtype == np.float64
    np.testing.assert_allclose(fast, naive, atol=1e-4, rtol=0)
    assert np.ptp(naive) > 100 * 1e-4  # the comparison can tell pairs apart
    # one document per query takes the batched full-prompt path
    np.testing.assert_allclose(judge.score(queries, documents[:1], direction), naive[:, :1], atol=1e-4, rtol=0)


def test_yesno_directions_ask_different_questions(tiny):
    model, tok = tiny
    judge = YesNoJudge(model, tok)
    assert not np.allclose(judge.score(PROFILES, ITEMS, "A"), judge.score(ITEMS, PROFILES, "B").T, atol=1e-3)


def test_yesno_runs_each_query_prefix_once(tiny, monkeypatch):
    model, tok = tiny
    judge = YesNoJudge(model, tok, batch_tokens=BIG)
    calls = []
    original = judge_lm.run_prefix
    monkeypatch.setattr("bump_profiles.judges.yesno.run_prefix", lambda m, ids: calls.append(len(ids)) or original(m, ids))
    judge.score(PROFILES, ITEMS, "A")
    assert len(calls) == len(PROFILES)


def test_yesno_without_chat_template_uses_plain_answer_prompt(tiny):
    model, _ = tiny
    tok = tiny_tokenizer()
    tok.chat_template = None
    judge = YesNoJudge(model, tok)
    assert judge.parts(PROFILES[0], "A").tail.endswith("\nAnswer:")
    np.testing.assert_allclose(judge.score(PROFILES, ITEMS, "A"), judge.score_naive(PROFILES, ITEMS, "A"), atol=1e-4, rtol=0)


# A Qwen3-style template: without enable_thinking=False the assistant turn opens a thinking block.
THINKING_TEMPLATE = TINY_CHAT_TEMPLATE.replace(
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}"
    "{% else %}{{ '<think>\n' }}{% endif %}{% endif %}",
)


def test_thinking_templates_are_rendered_with_thinking_off(tiny):
    model, _ = tiny
    tok = tiny_tokenizer()
    assert THINKING_TEMPLATE != TINY_CHAT_TEMPLATE
    tok.chat_template = THINKING_TEMPLATE
    # the template left to itself puts the answer position inside a thinking block
    raw = tok.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True)
    assert raw.endswith("assistant\n<think>\n")
    prompt = render(tok, "q")
    assert prompt.endswith("assistant\n<think>\n\n</think>\n\n")
    # the judge's answer prompt, the yes/no ids and the reader's prompt all read after the empty block
    judge = YesNoJudge(model, tok)
    assert judge.parts(PROFILES[0], "A").tail.endswith("</think>\n\n")
    assert judge.yes_ids == answer_token_ids(tok, ["yes", "Yes"])
    assert reader_contexts(tok, "p", ["x"])[0].endswith("</think>\n\n")
    # the profile generator's prompt too (a thinking policy would write its reasoning into the profile)
    from bump_profiles.engines.backends import TransformersBackend

    backend = TransformersBackend(model, tok, batch_size=2)
    seen: list[str] = []
    backend._batch = lambda prompts, *a: seen.extend(prompts) or [None] * len(prompts)
    backend.complete([[{"role": "user", "content": "q"}]], max_new_tokens=2)
    assert seen[0].endswith("assistant\n<think>\n\n</think>\n\n")
    # and the GRPO rollouts' prompts, which TRL renders with the config's chat_template_kwargs
    from trl.data_utils import maybe_apply_chat_template

    from bump_profiles.config import load_config
    from bump_profiles.train.trl_config import grpo_args

    args = grpo_args(load_config(Path(__file__).parents[1] / "configs" / "test-tiny.yaml"), num_processes=1, cuda=False)
    rendered = maybe_apply_chat_template({"prompt": [{"role": "user", "content": "q"}]}, tok, **args.chat_template_kwargs)
    assert rendered["prompt"].endswith("assistant\n<think>\n\n</think>\n\n")
    # a template without the switch is rendered as before
    plain = tiny_tokenizer()
    assert render(plain, "q") == plain.apply_chat_template(
        [{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True)


# --- likelihood judge ------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [BIG, SMALL])
def test_likelihood_efficient_equals_naive_and_serves_both_directions(tiny, budget):
    model, tok = tiny
    judge = make_judge(JudgeConfig(kind="likelihood", batch_tokens=budget), model=model, tokenizer=tok)
    assert judge.symmetric
    fast = judge.score(PROFILES, ITEMS, "A")
    naive = judge.score_naive(PROFILES, ITEMS, "A")
    np.testing.assert_allclose(fast, naive, atol=1e-4, rtol=0)
    assert np.ptp(naive) > 100 * 1e-4
    np.testing.assert_array_equal(judge.score(ITEMS, PROFILES, "B"), fast.T)


# one-token documents ("a" and the empty one: the gap alone), and lengths from 2 to 38 tokens
DOCUMENTS = ["a", ITEMS[1], "", "chess", ITEMS[2], "comet", ITEMS[3]]


@pytest.mark.parametrize("budget", [BIG, SMALL, 12, 40])
def test_likelihood_packed_documents_equal_naive_at_every_length_and_budget(tiny, budget):
    model, tok = tiny
    judge = make_judge(JudgeConfig(kind="likelihood", batch_tokens=budget), model=model, tokenizer=tok)
    parts = judge.parts(PROFILES[0])
    lengths = [len(encode(tok, parts.gap + d + parts.tail)) for d in DOCUMENTS]
    assert lengths.count(1) == 2 and len(set(lengths)) == 6  # a one-token score is its first token's log-prob alone
    rows = pack_rows(lengths, budget)
    assert len(rows) == {BIG: 1, SMALL: len(DOCUMENTS)}.get(budget, len(rows))
    if budget in (12, 40):  # rows split, and some row packs several documents
        assert 1 < len(rows) < len(DOCUMENTS)
    naive = judge.score_naive(PROFILES, DOCUMENTS, "A")
    np.testing.assert_allclose(judge.score(PROFILES, DOCUMENTS, "A"), naive, atol=1e-4, rtol=0)
    assert np.ptp(naive[:, [0, 2]]) > 100 * 1e-4  # the one-token documents' scores differ: the check can fail


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_likelihood_packed_equals_naive_under_eager_and_sdpa_attention(attention):
    tok = tiny_tokenizer()
    model = tiny_causal_lm(tok, seed=3).eval()
    model.set_attn_implementation(attention)
    assert model.config._attn_implementation == attention
    judge = make_judge(JudgeConfig(kind="likelihood", batch_tokens=BIG), model=model, tokenizer=tok)
    np.testing.assert_allclose(judge.score(PROFILES, DOCUMENTS, "A"), judge.score_naive(PROFILES, DOCUMENTS, "A"), atol=1e-4, rtol=0)


def test_likelihood_document_without_tokens_scores_zero(tiny):
    model, tok = tiny
    judge = LikelihoodJudge(model, tok, context="Profile: {query}\nItem:", neutral="Item:")  # no gap before the item
    parts = judge.parts(PROFILES[0])
    assert encode(tok, parts.gap + "" + parts.tail) == []
    fast = judge.score(PROFILES, ["", ITEMS[1], ""], "A")
    np.testing.assert_allclose(fast, judge.score_naive(PROFILES, ["", ITEMS[1], ""], "A"), atol=1e-4, rtol=0)
    assert (fast[:, [0, 2]] == 0).all() and (fast[:, 1] != 0).all()
    assert (judge.score(PROFILES, [""], "A") == 0).all()


def test_likelihood_is_pmi_with_the_neutral_term_once_per_document(tiny, monkeypatch):
    model, tok = tiny
    judge = make_judge(JudgeConfig(kind="likelihood"), model=model, tokenizer=tok)
    calls = []
    original = judge.mean_logprobs
    monkeypatch.setattr(judge, "mean_logprobs", lambda parts, docs: calls.append(parts) or original(parts, docs))
    matrix = judge.score(PROFILES, ITEMS, "A")
    assert len(calls) == len(PROFILES) + 1  # the neutral prompt once, then one prefix per profile
    neutral = original(judge.parts(None), ITEMS)
    conditional = original(judge.parts(PROFILES[1]), ITEMS)
    np.testing.assert_allclose(matrix[1], conditional - neutral)


def test_llm_judge_loads_by_path_in_bfloat16(tmp_path):
    save_tiny(tmp_path / "tiny")
    judge = make_judge(JudgeConfig(kind="likelihood", model=str(tmp_path / "tiny"), dtype="bfloat16"))
    assert judge.model.dtype == torch.bfloat16
    matrix = judge.score(PROFILES[:2], ITEMS, "A")
    assert matrix.shape == (2, len(ITEMS)) and np.isfinite(matrix).all()


# --- the bundled real models -----------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_judge_prefers_the_matching_item():
    judge = make_judge(JudgeConfig(kind="embedding"))
    matrix = judge.score(["Loves astronomy: telescopes, galaxies, comets.", "A keen baker of sourdough and croissants."],
                         ["Observed a comet through my telescope.", "My sourdough needed more yeast."], "A")
    assert matrix[0, 0] > matrix[0, 1] and matrix[1, 1] > matrix[1, 0]


@pytest.mark.slow
def test_smollm2_yes_no_ids_tokenisation_and_efficient_equals_naive():
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    judge = YesNoJudge(load_causal_lm("smollm2-135m"), tok)
    assert [tok.decode([t]) for t in judge.yes_ids] == ["yes", "Yes", " yes", " Yes"]
    assert [tok.decode([t]) for t in judge.no_ids] == ["no", "No", " no", " No"]
    # cutting the prompt around the document gives the same ids as tokenising it whole
    parts = judge.parts(PROFILES[0], "A")
    assert encode(tok, parts.prefix) + encode(tok, parts.gap + ITEMS[1] + parts.tail) == encode(
        tok, parts.prefix + parts.gap + ITEMS[1] + parts.tail
    )
    queries, documents = PROFILES[:2], ITEMS[:3]
    np.testing.assert_allclose(judge.score(queries, documents, "A"), judge.score_naive(queries, documents, "A"), atol=1e-4, rtol=0)


def test_yesno_template_with_the_document_first_shares_the_document_prefix(tiny, monkeypatch):
    model, tok = tiny
    document_first = "Profile: {document}\n\nItem: {query}\n\nSame user? Answer yes or no."
    judge = YesNoJudge(model, tok, batch_tokens=BIG, templates={"A": YESNO_A, "B": document_first})
    fast = judge.score(ITEMS, PROFILES, "B")
    assert fast.shape == (len(ITEMS), len(PROFILES))
    np.testing.assert_allclose(fast, judge.score_naive(ITEMS, PROFILES, "B"), atol=1e-4, rtol=0)
    # entry [item 1, profile 2] is the prompt written out in full, tokenised whole
    text = render(tok, document_first.format(query=ITEMS[1], document=PROFILES[2]))
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([encode(tok, text)])).logits[:, -1]
    assert fast[1, 2] == pytest.approx(judge.answer_scores(logits)[0], abs=1e-4)
    calls = []
    original = judge_lm.run_prefix
    monkeypatch.setattr("bump_profiles.judges.yesno.run_prefix", lambda m, ids: calls.append(len(ids)) or original(m, ids))
    judge.score(ITEMS, PROFILES, "B")
    assert len(calls) == len(PROFILES)  # one prefix per profile, the text that comes first


@pytest.mark.slow
def test_smollm2_likelihood_packed_equals_naive_and_bfloat16_ranks_as_float32():
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    judges = {dtype: LikelihoodJudge(load_causal_lm("smollm2-135m", dtype=dtype), tok, batch_tokens=BIG) for dtype in ("float32", "bfloat16")}
    fast = {dtype: judge.score(PROFILES, ITEMS, "A") for dtype, judge in judges.items()}
    np.testing.assert_allclose(fast["float32"], judges["float32"].score_naive(PROFILES, ITEMS, "A"), atol=1e-4, rtol=0)
    # bfloat16 moves the scores a little but picks the same best item per profile and ranks the pairs alike
    assert (fast["bfloat16"].argmax(axis=1) == fast["float32"].argmax(axis=1)).all()
    ranks = {dtype: m.ravel().argsort().argsort() for dtype, m in fast.items()}
    assert np.corrcoef(ranks["float32"], ranks["bfloat16"])[0, 1] > 0.9


@pytest.mark.parametrize("kind", ["likelihood", "lexical"])
def test_raw_scores_of_a_symmetric_judge_take_one_pass_and_equal_separate_passes(tiny, kind):
    """The null texts ride in the same pass as one more profile and item: the same scores as scoring them apart."""
    from bump_profiles.judges.lexical import LexicalJudge
    from bump_profiles.rewards.scoring import NULL_TEXT, raw_scores

    model, tok = tiny
    judge = (make_judge(JudgeConfig(kind=kind), model=model, tokenizer=tok) if kind == "likelihood"
             else LexicalJudge.fitted([*PROFILES, *ITEMS]))
    calls = []
    score = judge.score
    judge.score = lambda q, d, direction: calls.append((len(q), len(d))) or score(q, d, direction)
    raw = raw_scores(judge, PROFILES, ITEMS)
    assert calls == [(len(PROFILES) + 1, len(ITEMS) + 1)]
    np.testing.assert_allclose(raw.profile_to_item, score(PROFILES, ITEMS, "A"), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(raw.item_to_profile, raw.profile_to_item.T)
    np.testing.assert_allclose(raw.item_null, score([NULL_TEXT], ITEMS, "A")[0], atol=1e-4, rtol=0)
    np.testing.assert_allclose(raw.profile_null, score([NULL_TEXT], PROFILES, "B")[0], atol=1e-4, rtol=0)
    if kind == "likelihood":  # the profiles' null scores differ: a swapped axis would fail
        assert np.ptp(raw.profile_null) > 1e-3
