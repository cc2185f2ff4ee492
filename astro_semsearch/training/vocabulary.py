"""The words of the Galaxy Zoo captions: for each answer, interchangeable wordings.

Every list is a set of interchangeable wordings; `~astro_semsearch.training.captions`
draws one at random each time. Astronomer terms and plain language are mixed
on purpose. The query wordings the evaluation uses (``data/eval_wordings.toml``)
were written apart from these lists, and no evaluated string is ever a
training caption (`~astro_semsearch.training.concepts.held_out_texts`).
"""
from __future__ import annotations


SMOOTH = {
    "round": [
        "smooth round elliptical", "round elliptical galaxy", "completely round smooth galaxy",
        "circular featureless galaxy", "E0 elliptical", "round, smooth early-type galaxy",
        "smooth spheroidal galaxy",
    ],
    "between": [
        "smooth elliptical galaxy", "oval smooth galaxy", "elliptical galaxy",
        "slightly elongated elliptical", "smooth early-type galaxy", "featureless oval galaxy",
        "smooth galaxy with an oval shape",
    ],
    "cigar": [
        "cigar-shaped smooth galaxy", "elongated cigar-shaped galaxy", "highly elongated elliptical",
        "smooth, cigar-shaped galaxy", "very flattened smooth galaxy", "elongated featureless galaxy",
    ],
    "any": ["smooth galaxy", "elliptical galaxy", "featureless smooth galaxy", "early-type galaxy"],
}

DISK = ["disk galaxy", "disc galaxy", "galaxy with a disk", "late-type galaxy", "galaxy with visible features"]

EDGE_ON = [
    "edge-on disk galaxy", "edge-on disc", "disk galaxy seen edge-on", "edge-on spiral",
    "thin edge-on galaxy", "galaxy viewed side-on", "flat disk seen from the side",
]

SPIRAL = ["spiral galaxy", "spiral", "galaxy with spiral arms", "face-on spiral galaxy",
           "disk galaxy with spiral arms"]

BARRED_SPIRAL = [
    "barred spiral galaxy", "barred spiral", "spiral galaxy with a bar through its centre",
    "SB spiral", "spiral galaxy with a central bar",
]

BARRED_DISK = ["barred galaxy", "barred disk galaxy", "disk galaxy with a bar", "galaxy with a strong central bar"]

STAR = ["star or imaging artifact", "point-like star", "bright foreground star", "image artifact"]

# "with ..." clauses.
WITH_BAR = ["a bar", "a central bar", "a bar through its centre", "a stellar bar"]

ARMS_COUNT = {
    "one": ["one spiral arm", "a single arm", "a single spiral arm"],
    "two": ["two spiral arms", "two arms", "a pair of spiral arms"],
    "three": ["three spiral arms", "three arms"],
    "four": ["four spiral arms", "four arms"],
    "many": ["many spiral arms", "multiple spiral arms", "many arms", "flocculent arms"],
}

WINDING = {
    "tight": ["tightly wound arms", "tightly wound spiral arms", "tight spiral arms"],
    "medium": ["moderately wound arms", "medium-wound spiral arms"],
    "loose": ["loosely wound arms", "open, loosely wound spiral arms", "wide open arms"],
}

# Combined forms: "two tightly wound arms".
COUNT_WORD = {"one": "one", "two": "two", "three": "three", "four": "four", "many": "many"}
WIND_WORD = {"tight": ["tightly wound", "tight"], "medium": ["moderately wound"], "loose": ["loosely wound", "open"]}

# Prefix forms for the head noun ("two-armed spiral", "grand design").
ARMS_PREFIX = {"two": ["two-armed", "grand design two-armed"], "one": ["one-armed"],
                "many": ["multi-armed", "flocculent"]}

BULGE = {
    "none": ["a faint, tiny centre", "a pure disk and faint centre"],
    "small": ["a small bulge", "a small central bulge", "a just noticeable bulge"],
    "obvious": ["an obvious bulge", "a prominent bulge", "a bright central bulge"],
    "dominant": ["a dominant bulge", "a big bright bulge", "a dominant central bulge"],
}

EDGE_BULGE = {
    "rounded": ["a rounded central bulge", "a round bulge"],
    "boxy": ["a boxy bulge", "a box-shaped bulge", "a peanut-shaped bulge"],
    "none": ["a thin flat disk", "a razor-thin disk"],
}

# Odd features: standalone noun phrases and "with ..." clauses.
ODD = {
    "ring": (
        ["ring galaxy", "ring-shaped galaxy", "galaxy with a bright ring", "polar ring galaxy",
         "galaxy with a ring around its core", "ringed galaxy"],
        ["a ring", "a bright ring", "a ring around the centre", "an outer ring", "a ring structure"],
    ),
    "lens": (
        ["gravitational lens", "gravitational arc", "galaxy with a lensed arc", "strong lens candidate",
         "lensing galaxy with an arc", "Einstein ring candidate"],
        ["a gravitational arc", "a lensed arc", "an arc around it", "a faint arc nearby"],
    ),
    "disturbed": (
        ["disturbed galaxy", "galaxy with disturbed morphology", "tidally disturbed galaxy",
         "asymmetric, disturbed galaxy", "distorted galaxy"],
        ["disturbed morphology", "a disturbed, asymmetric shape", "tidal distortions", "tidal features"],
    ),
    "irregular": (
        ["irregular galaxy", "irregular, clumpy galaxy", "galaxy with an irregular shape",
         "clumpy irregular", "messy irregular galaxy"],
        ["an irregular shape", "clumpy irregular structure", "irregular, patchy light"],
    ),
    "merger": (
        ["merging pair", "merging galaxies", "galaxy merger", "two galaxies colliding",
         "interacting galaxies", "merger with tidal tails", "pair of interacting galaxies"],
        ["tidal tails", "a close companion it is merging with", "signs of a merger", "a merging neighbour"],
    ),
    "dust": (
        ["galaxy with a dust lane", "dusty disk with a dark lane", "galaxy crossed by a dust lane",
         "edge-on disk with a dust lane"],
        ["a dust lane", "a dark dust lane", "a prominent dust lane", "a dark dusty band"],
    ),
    "other": (["peculiar galaxy", "unusual galaxy", "galaxy with an odd feature"],
              ["an unusual feature", "peculiar structure"]),
}

ODD_KEYS = ("ring", "lens", "disturbed", "irregular", "other", "merger", "dust")  # Class8.1 .. 8.7

# Sentence frames around the noun phrase. "{a}" is the article of the phrase.
FRAMES = [
    "{np}", "{np}", "{a} {np}", "{a} {np}", "an image of {a} {np}", "this is {a} {np}",
    "a galaxy image showing {a} {np}", "SDSS image of {a} {np}", "{np} in the sky",
]

LENS = [
    "a strong gravitational lens with blue arcs around a red galaxy",
    "an Einstein ring",
    "lensed arcs around a massive elliptical",
    "a gravitational lens",
    "strong lensing arcs",
    "blue lensed arcs around a red elliptical galaxy",
    "a red galaxy lensing a blue background source",
    "an elliptical galaxy with a gravitational arc",
    "a partial Einstein ring around a luminous red galaxy",
    "strong gravitational lensing: arcs bent around a massive galaxy",
    "a lensed blue background galaxy forming arcs",
    "a blue ring around a red elliptical",
    "multiple images of a lensed source around an elliptical",
    "gravitational arc around a smooth galaxy",
]


PLURAL = ("merging galaxies", "two galaxies colliding", "interacting galaxies", "strong lensing arcs",
           "lensed arcs around a massive elliptical")
