"""Seeded synthetic users with known latent interests, and a LaMP-style task that depends on them.

Each user has a few interests drawn from a fixed inventory of topics with distinct vocabularies and
writes interactions about them. Because the truth is known, tests and the demo can check that a
profile carries real signal (e.g. the true interests written plainly must score well).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from bump_profiles.data.schema import Interaction, User

TOPICS: dict[str, list[str]] = {
    "astronomy": ["telescope", "galaxy", "nebula", "orbit", "comet", "planet", "supernova", "eclipse", "asteroid", "stargazing", "constellation", "observatory"],
    "baking": ["sourdough", "croissant", "oven", "flour", "yeast", "pastry", "dough", "butter", "crust", "muffin", "kneading", "brioche"],
    "cycling": ["bicycle", "pedal", "gears", "helmet", "peloton", "saddle", "climb", "chainring", "sprint", "velodrome", "derailleur", "touring"],
    "chess": ["opening", "gambit", "endgame", "bishop", "knight", "checkmate", "rook", "tournament", "grandmaster", "pawn", "castling", "blitz"],
    "gardening": ["compost", "tomatoes", "seedlings", "pruning", "mulch", "perennials", "greenhouse", "soil", "roses", "watering", "raised-bed", "weeding"],
    "jazz": ["saxophone", "improvisation", "bebop", "trumpet", "swing", "quartet", "bassline", "coltrane", "standards", "syncopation", "club", "vinyl"],
    "photography": ["aperture", "lens", "shutter", "exposure", "portrait", "tripod", "darkroom", "mirrorless", "bokeh", "landscape", "histogram", "film"],
    "hiking": ["trail", "summit", "backpack", "switchbacks", "boots", "ridge", "campsite", "wilderness", "map", "altitude", "waterfall", "trekking"],
    "cooking-asian": ["ramen", "wok", "dumplings", "kimchi", "sushi", "miso", "noodles", "curry", "tofu", "stir-fry", "dashi", "bao"],
    "programming": ["python", "compiler", "debugging", "refactoring", "recursion", "database", "algorithm", "repository", "unit-tests", "api", "concurrency", "typescript"],
    "football": ["goalkeeper", "striker", "penalty", "midfield", "league", "offside", "stadium", "tackle", "derby", "transfer", "formation", "hat-trick"],
    "birdwatching": ["binoculars", "warbler", "heron", "migration", "plumage", "owl", "wetland", "sparrow", "birdsong", "hawk", "nesting", "feeder"],
    "knitting": ["yarn", "needles", "wool", "stitch", "cardigan", "purl", "scarf", "pattern", "cable-knit", "mohair", "sweater", "crochet"],
    "history": ["empire", "medieval", "archive", "dynasty", "revolution", "castle", "manuscript", "treaty", "pharaoh", "renaissance", "battle", "chronicle"],
    "wine": ["vineyard", "tannins", "merlot", "sommelier", "vintage", "cellar", "riesling", "decanter", "terroir", "champagne", "pinot", "cork"],
    "robotics": ["actuator", "servo", "lidar", "gripper", "arduino", "kinematics", "sensor", "drone", "controller", "autonomy", "torque", "microcontroller"],
    "yoga": ["asana", "meditation", "breathing", "mat", "vinyasa", "flexibility", "mindfulness", "pose", "stretching", "balance", "retreat", "pranayama"],
    "cinema": ["director", "screenplay", "cinematography", "premiere", "festival", "documentary", "actor", "noir", "sequel", "montage", "trailer", "auteur"],
    "finance": ["stocks", "dividend", "portfolio", "bonds", "inflation", "index-fund", "budget", "mortgage", "savings", "interest-rate", "etf", "retirement"],
    "aquariums": ["aquarium", "cichlid", "coral", "filter", "guppies", "reef", "algae", "substrate", "shrimp", "tank", "salinity", "betta"],
    "poetry": ["sonnet", "stanza", "verse", "haiku", "metaphor", "rhyme", "ballad", "anthology", "imagery", "meter", "elegy", "lyric"],
    "woodworking": ["chisel", "lathe", "oak", "joinery", "sawdust", "dovetail", "plane", "walnut", "workbench", "sanding", "mortise", "varnish"],
    "climbing": ["bouldering", "carabiner", "belay", "crag", "chalk", "harness", "overhang", "crimp", "rappel", "quickdraw", "crux", "topo"],
    "coffee": ["espresso", "grinder", "roast", "latte", "arabica", "pour-over", "crema", "barista", "beans", "aeropress", "single-origin", "cortado"],
}

TEMPLATES = [
    "Wrote a note about {0}, {1} and {2}.",
    "Reviewed a guide on {0} and {1}; loved the part on {2}.",
    "Asked a question about {0}: how does {1} affect {2}?",
    "Shared photos of {0} with {1}, mostly {2}.",
    "Posted: my weekend was all {0}, {1} and some {2}.",
    "Read an article on {0}; it compared {1} with {2}.",
]


def make_users(n_users: int, *, seed: int = 0, interactions: tuple[int, int] = (10, 16), interests: tuple[int, int] = (2, 3)) -> list[User]:
    """``n_users`` deterministic users; ``extra["interests"]`` holds each user's true topics."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    users = []
    for u in range(n_users):
        own = rng.sample(topics, rng.randint(*interests))
        weights = [rng.uniform(1.0, 3.0) for _ in own]
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 200))
        items = []
        for i in range(rng.randint(*interactions)):
            topic = rng.choices(own, weights=weights)[0]
            words = rng.sample(TOPICS[topic], 3)
            text = rng.choice(TEMPLATES).format(*words)
            day = (start + timedelta(days=3 * i + rng.randint(0, 2))).isoformat()
            items.append(Interaction(id=f"s{seed}-u{u}-i{i}", fields={"text": text}, source="synthetic", label=topic, date=day))
        users.append(User(id=f"synth-{seed}-{u}", interactions=items, extra={"interests": own}))
    return users


def interests_profile(user: User) -> str:
    """The true interests written plainly: the ideal profile, known only for synthetic users."""
    interests = user.extra["interests"]
    words = "; ".join(f"{t} ({', '.join(TOPICS[t][:4])})" for t in interests)
    return f"This user is interested in {words}."


def make_task(users: list[User], *, seed: int = 0, per_user: int = 1) -> list[dict]:
    """LaMP_1-style choices, ``per_user`` per user: which of two new items will this user engage with?

    One candidate is about one of the user's interests, the other about a topic they never touch;
    the gold is ``[1]`` or ``[2]``. Returns LaMP-style questions ``{id, user_id, input, output}``
    (ids ``q{n}`` with one per user, ``q{n}-{j}`` with more). One question per user is not a
    measurement: evaluations ask at least 10.
    """
    rng = random.Random(seed + 7919)
    topics = sorted(TOPICS)
    rows = []
    for n, user in enumerate(users):
        for j in range(per_user):
            own = user.extra["interests"]
            pos_topic = rng.choice(own)
            neg_topic = rng.choice([t for t in topics if t not in own])
            pos = " ".join(rng.sample(TOPICS[pos_topic], 3))
            neg = " ".join(rng.sample(TOPICS[neg_topic], 3))
            first_is_pos = rng.random() < 0.5
            a, b = (pos, neg) if first_is_pos else (neg, pos)
            rows.append({
                "id": f"q{n}" if per_user == 1 else f"q{n}-{j}",
                "user_id": user.id,
                "input": f"Which item will this user engage with? Just answer with [1] or [2]. [1]: \"{a}\" [2]: \"{b}\"",
                "output": "[1]" if first_is_pos else "[2]",
            })
    return rows
