"""No LaMP answer reaches a question's inputs: reader prompts, retrieved items and profile-generation
prompts for question q never contain q's target item or its gold output.

The fixtures are built the way LaMP builds its files: one person asks three questions, and each
question's profile is the person's items *except* that question's target, so the target of one
question sits in the profiles of the others (the leak the loader used to merge in).
"""

from __future__ import annotations

import json

import pytest

from bump_profiles.data import load_lamp_questions
from bump_profiles.data.lamp import question_users
from bump_profiles.lamp import get_task
from bump_profiles.lamp.retrieval import BM25Retriever, retrieve
from bump_profiles.lamp.runner import EvalConfig, build_prompts
from bump_profiles.profiles.prompts import ProfilePrompt

CATS = ["sports", "politics", "travel"]


def _item(task: str, n: int, words: str) -> dict:
    """Profile item n of the person, of the task's shape; ``words`` make it unique and findable."""
    text = f"A story about {words} and nothing else"
    return {
        "LaMP_1": {"title": f"Paper {words}", "abstract": text},
        "LaMP_2_news": {"title": f"News {words}", "text": text, "category": CATS[n % 3]},
        "LaMP_2_movies": {"description": text, "tag": ["comedy", "action", "classic"][n % 3]},
        "LaMP_3": {"text": text, "score": str(1 + n % 5)},
        "LaMP_4": {"title": f"Headline {words}", "text": text},
        "LaMP_5": {"title": f"Title {words}", "abstract": text},
        "LaMP_6": {"title": f"Subject {words}", "text": text},
        "LaMP_7": {"text": text},
    }[task] | {"id": f"i{n}", "date": f"2024-01-{n + 1:02d}"}


def _question(task: str, target: dict) -> tuple[str, str]:
    """(input, gold) of the question whose answer is ``target``, worded as LaMP words it."""
    if task == "LaMP_1":
        return (f'For an author who has written the paper with the title "A new paper", which reference is related? '
                f'Just answer with [1] or [2] without explanation. [1]: "{target["title"]}" [2]: "Ovens"', "[1]")
    if task == "LaMP_2_news":
        return f"Which category does this article relate to? article: {target['text']}", target["category"]
    if task == "LaMP_2_movies":
        return f"Which tag does this movie relate to? description: {target['description']}", target["tag"]
    if task == "LaMP_3":
        return f"What is the score of the following review on a scale of 1 to 5? review: {target['text']}", target["score"]
    if task == "LaMP_7":
        return f"Paraphrase the following tweet without any explanation before or after it: {target['text']}", target["text"]
    if task == "LaMP_4":
        return f"Generate a headline for the following article: {target['text']}", target["title"]
    field = "abstract" if task == "LaMP_5" else "text"
    return f"Generate a title for the following: {target[field]}", target["title"]


def _signatures(task: str, target: dict, gold: str) -> list[str]:
    """Strings that identify the target item or its gold: its own text fields, and a generated gold."""
    sig = [v for k, v in target.items() if k not in ("id", "date", "category", "tag", "score")]
    return sig + ([gold] if get_task(task).kind == "generation" else [])


def lamp_fixture(tmp_path, task: str):
    """A person with 5 items and 3 questions (targets: items 0-2), each question's profile the rest."""
    words = ["zebra quartz", "maple comet", "cobalt fjord", "walnut lagoon", "amber tundra"]
    items = [_item(task, n, w) for n, w in enumerate(words)]
    questions, golds, targets = [], [], {}
    for n in range(3):
        text, gold = _question(task, items[n])
        profile = [dict(it, id=f"q{n}-{it['id']}") for m, it in enumerate(items) if m != n]
        questions.append({"id": f"q{n}", "input": text, "profile": profile})
        golds.append({"id": f"q{n}", "output": gold})
        targets[f"q{n}"] = _signatures(task, items[n], gold)
    q, g = tmp_path / f"{task}_questions.json", tmp_path / f"{task}_outputs.json"
    q.write_text(json.dumps(questions))
    g.write_text(json.dumps({"task": task, "golds": golds}))
    return q, g, targets


def _evidence(prompt: str, question: str) -> str:
    """A reader prompt without its final question: the evidence it carries."""
    assert prompt.endswith(question.strip())
    return prompt[: -len(question.strip())]


def assert_no_leak(task_name: str, users, targets: dict[str, list[str]], k: int) -> None:
    task = get_task(task_name)
    inputs = {q["id"]: q["input"] for u in users for q in u.extra["questions"]}
    profiles = {u.id: "a profile" for u in question_users(users)}
    for method in ("retrieval", "profile+retrieval"):
        for p in build_prompts(task, users, EvalConfig(method=method, k=k), profiles=profiles, retriever=BM25Retriever()):
            evidence = _evidence(p.prompt, inputs[p.id])
            for sig in targets[p.id]:
                assert " ".join(sig.split()[:12]) not in evidence, (p.id, method, sig[:60])
    prompt = ProfilePrompt(history_items=None, history_tokens=None)
    retriever = BM25Retriever()
    for user in question_users(users):
        (question,) = user.extra["questions"]
        text = prompt.messages(user.interactions)[0]["content"]
        retrieved = retrieve(task, user, question, retriever, k)
        for sig in targets[question["id"]]:
            head = " ".join(sig.split()[:12])
            assert head not in text, (question["id"], "profile-generation prompt", sig[:60])
            assert all(head not in " ".join(it.fields.values()) for it in retrieved), (question["id"], sig[:60])
    for person in users:  # what a person-level generator (training, judges) reads holds no target either
        history = " ".join(" ".join(it.fields.values()) for it in person.interactions)
        for q in person.extra["questions"]:
            assert all(" ".join(sig.split()[:12]) not in history for sig in targets[q["id"]]), q["id"]


TASK_NAMES = ["LaMP_1", "LaMP_2_news", "LaMP_2_movies", "LaMP_3", "LaMP_4", "LaMP_5", "LaMP_6", "LaMP_7"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_no_question_sees_its_own_answer(tmp_path, task):
    q, g, targets = lamp_fixture(tmp_path, task)
    data = load_lamp_questions(q, task=task, outputs=g)
    assert len(data.users) == 1 and data.n_questions == 3  # still one person, for negatives and counting
    assert_no_leak(task, data.users, targets, k=10)  # k above the profile size: every item it may see
    # and the merged view the loader used to build would have leaked: the fixture can catch a leak
    merged = " ".join(" ".join(v for k, v in it.items() if k not in ("id", "date")) for q_ in json.loads(q.read_text())
                      for it in q_["profile"])
    assert all(" ".join(targets[qid][0].split()[:12]) in merged for qid in targets)


def _answers(task: str, users) -> dict[str, list[str]]:
    """What answers each real sample question: its article (LaMP_2_news, the target item), or the
    reference the gold picks (LaMP_1; the paper's own title is in its own official profile)."""
    spec = get_task(task)
    out = {}
    for u in users:
        for q in u.extra["questions"]:
            fields = spec.parse_input(q["input"], record=q["id"])
            out[q["id"]] = [fields["article"]] if task == "LaMP_2_news" else [fields["ref1" if q["output"] == "[1]" else "ref2"]]
    return out


@pytest.mark.shared
@pytest.mark.parametrize("task", ["LaMP_1", "LaMP_2_news"])
@pytest.mark.parametrize("split", ["train", "dev"])
def test_real_samples_do_not_leak(lamp_samples, task, split):
    folder = lamp_samples / task
    data = load_lamp_questions(folder / f"{split}_questions.json", outputs=folder / f"{split}_outputs.json")
    assert_no_leak(task, data.users, _answers(task, data.users), k=1)
    assert_no_leak(task, data.users, _answers(task, data.users), k=5)


@pytest.mark.shared
def test_lamp2_news_bm25_top1_is_no_longer_the_questions_own_article(lamp_samples):
    """The case the issue measured: the person with three train questions got each one's own article at k=1."""
    folder = lamp_samples / "LaMP_2_news"
    data = load_lamp_questions(folder / "train_questions.json", outputs=folder / "train_outputs.json")
    person = max(data.users, key=lambda u: len(u.extra["questions"]))
    assert len(person.extra["questions"]) == 3
    task, retriever = get_task("LaMP_2_news"), BM25Retriever()

    def norm(t: str) -> str:
        return " ".join(t.split())

    for user in question_users([person]):
        (q,) = user.extra["questions"]
        article = norm(task.parse_input(q["input"])["article"])
        (top,) = retrieve(task, user, q, retriever, 1)
        assert norm(top.fields.get("text", "")) != article
        # the merged history (what the loader used to search) did hold it, so the check is not vacuous
        union = {norm(it.fields.get("text", "")) for v in person.extra["question_items"].values() for it in v}
        assert article in union
