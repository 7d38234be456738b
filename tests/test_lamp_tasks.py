"""Task specs (input parsing, prompts, post-processing) and the retrieval baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bump_profiles.data import Interaction, User, load_lamp_questions
from bump_profiles.data.tasks import FILE_TASKS, ITEM_FORMATS
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp import TASKS, TaskSpec, get_task
from bump_profiles.lamp.retrieval import BM25Retriever, DenseRetriever, make_retriever, retrieve, top_k

# One input per task in LaMP's own phrasing, with the retrieval query LaMP extracts from it.
INPUTS = {
    "LaMP_1": ('For an author who has written the paper with the title "Deep nets", which reference is related? '
               'Just answer with [1] or [2] without explanation. [1]: "Graph cuts" [2]: "Neural codes"',
               "Graph cuts Neural codes"),
    "LaMP_2_news": ("Which category does this article relate to among the following categories? Just answer with the "
                    "category name without further explanation. categories: [women, sports] article: The team won.",
                    "The team won."),
    "LaMP_2_movies": ("Which tag does this movie relate to among the following tags? Just answer with the tag name "
                      "without further explanation. tags: [comedy, classic] description: A clown in space.",
                      "A clown in space."),
    "LaMP_3": ("What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
               "without further explanation. review: Great pan, sturdy.", "Great pan, sturdy."),
    "LaMP_4": ("Generate a headline for the following article: Rain fell all week.", "Rain fell all week."),
    "LaMP_5": ("Generate a title for the following abstract of a paper: We study graphs.", "We study graphs."),
    "LaMP_6": ("Generate a subject for the following email: Lunch at noon?", "Lunch at noon?"),
    "LaMP_7": ("Paraphrase the following tweet without any explanation before or after it: so tired today",
               "so tired today"),
    "synthetic": ('Which item will this user engage with? Just answer with [1] or [2]. [1]: "oven flour" [2]: "rook pawn"',
                  "oven flour rook pawn"),
}


def test_registry_covers_every_lamp_task_with_official_metric_names():
    assert set(TASKS) == set(INPUTS)
    names = {t.name: t.metric_names for t in TASKS.values()}
    assert names["LaMP_1"] == names["LaMP_2_news"] == ("accuracy", "f1")
    assert names["LaMP_3"] == ("MAE", "RMSE")
    assert all(names[f"LaMP_{k}"] == ("rouge-1", "rouge-L") for k in (4, 5, 6, 7))
    assert len(get_task("LaMP_2_news").labels) == len(get_task("LaMP_2_movies").labels) == 15


def test_every_task_with_files_has_its_item_format_and_only_those():
    """The item facts live in the data layer (data/tasks.py); each file task's spec points at its own."""
    assert {n for n, t in TASKS.items() if t.has_files} == set(FILE_TASKS) == set(ITEM_FORMATS)
    assert all(TASKS[n].items is ITEM_FORMATS[n] for n in FILE_TASKS)
    assert not TASKS["synthetic"].has_files
    with pytest.raises(ValueError, match="item format"):
        TaskSpec(name="LaMP_9", kind="generation", pattern=".*", query_fields=(), item_text=str, item_prompt=str,
                 items=ITEM_FORMATS["LaMP_7"])

@pytest.mark.parametrize("name", sorted(INPUTS))
def test_query_is_lamps(name):
    text, query = INPUTS[name]
    assert get_task(name).query(text) == query


def test_parse_input_names_fields_and_rejects_other_tasks():
    fields = get_task("LaMP_1").parse_input(INPUTS["LaMP_1"][0])
    assert fields == {"title": "Deep nets", "ref1": "Graph cuts", "ref2": "Neural codes"}
    with pytest.raises(DataError, match="record q9: field 'input': input does not look like a LaMP_1 question"):
        get_task("LaMP_1").parse_input("Generate a title: x", record="q9")


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown task 'LaMP_9'"):
        get_task("LaMP_9")


@pytest.mark.parametrize(
    ("task", "raw", "expected"),
    [
        ("LaMP_1", "[2]", "[2]"),
        ("LaMP_1", "The answer is [1].", "[1]"),
        ("LaMP_1", "2", "[2]"),
        ("LaMP_1", "Reference [2] fits better than [1]", "[2]"),
        ("LaMP_1", "I cannot tell", "I cannot tell"),
        ("LaMP_2_news", "Category: Science & Technology", "science & technology"),
        ("LaMP_2_news", "sports, maybe politics", "sports"),
        ("LaMP_2_news", "womenswear", "womenswear"),
        ("LaMP_2_movies", "dark comedy", "dark comedy"),
        ("LaMP_3", "I'd give it 4 stars", "4"),
        ("LaMP_3", "great", "great"),
        ("LaMP_4", '"Storm hits coast"\nExplanation: ...', "Storm hits coast"),
    ],
)
def test_postprocess(task, raw, expected):
    assert get_task(task).postprocess(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('The reference to "Neural codes for visi', "[2]"),  # names choice 2 by its (cut) title
        ("Graph cuts is related", "[1]"),
        ("[2], not Graph cuts", "[2]"),  # a label wins over a title
        ('The reference to "Deep nets" is', 'The reference to "Deep nets" is'),  # the paper's own title
    ],
)
def test_postprocess_maps_a_named_choice_to_its_label(raw, expected):
    question = INPUTS["LaMP_1"][0].replace("Neural codes", "Neural codes for vision tasks")
    assert get_task("LaMP_1").postprocess(raw, question) == expected


def _news_item(n: int, title: str, text: str, category: str) -> Interaction:
    return Interaction(id=str(n), fields={"title": title, "text": text}, source="LaMP_2_news", label=category)


def test_prompt_puts_profile_then_items_then_question():
    task = get_task("LaMP_2_news")
    item = _news_item(1, "Cup final", "The home side won the cup " + "again " * 80, "sports")
    prompt = task.prompt("Which category? article: x", profile="Likes  sports\nand food.", items=[item])
    profile, items, question = prompt.split("\n\n")
    assert profile == "User profile: Likes sports and food."
    assert items.startswith('Past items of this user:\n- the category for the article: "The home side won')
    assert items.endswith('..." is "sports"')  # long items are cut
    assert question == "Which category? article: x"
    assert task.prompt("Q") == "Q"


def test_top_k_is_best_first_with_stable_ties():
    assert top_k(np.array([0.1, 0.9, 0.9, 0.5]), 3) == [1, 2, 3]


def _user() -> User:
    items = [
        _news_item(0, "Budget vote", "Parliament passed the budget after a long debate.", "politics"),
        _news_item(1, "Sourdough tips", "Bake bread with a starter and a hot oven.", "food & drink"),
        _news_item(2, "Derby day", "The striker scored twice in the derby.", "sports"),
    ]
    return User("u1", items)


def test_bm25_retrieves_the_users_matching_item():
    task = get_task("LaMP_2_news")
    question = {"id": "q1", "input": "Which category? article: A striker scored in the derby."}
    got = retrieve(task, _user(), question, BM25Retriever(), k=2)
    assert got[0].id == "2"
    assert len(got) == 2
    assert retrieve(task, _user(), {"id": "q2", "input": "article: the and of"}, BM25Retriever(), k=1)[0].id == "0"


class BagOfWords:
    """A stand-in sentence encoder: normalized word counts over a fixed vocabulary; counts its calls."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.calls = 0

    def encode(self, texts, batch_size, normalize_embeddings, show_progress_bar):
        self.calls += 1
        vecs = np.array([[t.lower().count(w) for w in self.vocab] for t in texts], dtype=float) + 1e-9
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def test_dense_retrieves_by_cosine_and_encodes_a_users_items_once():
    encoder = BagOfWords(["budget", "bread", "striker", "derby", "oven"])
    retriever = DenseRetriever(encoder)
    task = get_task("LaMP_2_news")
    user = _user()
    assert retrieve(task, user, {"id": "q1", "input": "article: bread in the oven"}, retriever, k=1)[0].id == "1"
    assert retrieve(task, user, {"id": "q2", "input": "article: the derby"}, retriever, k=1)[0].id == "2"
    assert encoder.calls == 3  # items once, then one call per query


def test_make_retriever_rejects_unknown_kinds():
    assert isinstance(make_retriever("bm25"), BM25Retriever)
    with pytest.raises(ConfigError, match="unknown retriever"):
        make_retriever("tfidf")


@pytest.mark.shared
@pytest.mark.parametrize("task", ["LaMP_1", "LaMP_2_news"])
def test_every_real_sample_question_parses_and_retrieves(lamp_samples, task):
    spec = get_task(task)
    retriever = BM25Retriever()
    for split in ("train", "dev", "test"):
        data = load_lamp_questions(lamp_samples / task / f"{split}_questions.json")
        for user in data.users:
            for question in user.extra["questions"]:
                assert spec.query(question["input"])
                items = retrieve(spec, user, question, retriever, k=2)
                assert len(items) == min(2, len(user.interactions))
                assert all(it in user.interactions for it in items)


@pytest.mark.shared
def test_lamp1_query_is_the_two_references(lamp_samples):
    q = json.loads((lamp_samples / "LaMP_1" / "train_questions.json").read_text())[0]
    assert get_task("LaMP_1").query(q["input"]) == (
        "Reliable broadcasting in product networks with Byzantine faults Auctions with heterogeneous items and budget limits"
    )
