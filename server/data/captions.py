"""Caption templates. Each action has phrasings used for training and others held out
for evaluation only, so a test caption is worded in a way the model never read. Both
lists name the same parameters (speed, direction, hand, count), in different words
where the language allows.

A caption is a subject and one verb phrase per action: "a person waves with the left
hand twice, then jumps forward".
"""

import numpy as np

VERSION = 1

SUBJECTS = ["a person", "someone", "a man", "a woman", "the person", "a figure"]
HELD_OUT_SUBJECTS = ["a human", "the man", "this person", "an individual"]

COUNTS = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times"}
HELD_OUT_COUNTS = {1: "one time", 2: "two times", 3: "3 times", 4: "4 times", 5: "5 times", 6: "6 times"}

# action -> (training phrasings, held-out phrasings); fields come from the parameters.
PHRASES = {
    "walk": (["walks {direction} {speed}", "is walking {direction} {speed}", "takes steps {direction} {speed}",
              "walks {speed} {direction}"],
             ["strolls {direction} {speed}", "moves {direction} on foot {speed}"]),
    "jog": (["jogs forward", "is jogging forward", "jogs ahead at an easy pace"], ["runs slowly forward", "does a light jog ahead"]),
    "run": (["runs forward", "is running forward fast", "sprints forward"], ["dashes ahead", "runs quickly ahead"]),
    "walk_backward": (["walks backward {speed}", "is walking backwards {speed}", "steps backward {speed}"],
                      ["moves backwards on foot {speed}", "retreats walking backward {speed}"]),
    "start_stop": (["starts walking and then stops", "walks a few steps and stops"], ["begins to walk, then comes to a halt"]),
    "side_step": (["side steps to the {side}", "steps sideways to the {side}", "shuffles to the {side}"],
                  ["moves sideways toward the {side}", "sidesteps {side}ward"]),
    "turn": (["turns {degrees} degrees to the {side}", "turns around to the {side} by {degrees} degrees",
              "rotates in place {degrees} degrees to the {side}"],
             ["spins {degrees} degrees toward the {side}", "pivots {side} by {degrees} degrees"]),
    "circle": (["walks in a circle to the {side}", "walks around in a {side} circle", "circles to the {side} while walking"],
               ["walks a loop turning {side}", "paces around in a circle toward the {side}"]),
    "jump": (["jumps {direction} {count}", "does {count_n} jumps {direction}", "hops {direction} with both feet {count}"],
             ["leaps {direction} {count}", "springs up {direction} {count}"]),
    "hop": (["hops on the {side} leg {count}", "jumps on one leg, the {side} one, {count}"],
            ["bounces on the {side} foot {count}", "skips on their {side} leg {count}"]),
    "jumping_jacks": (["does jumping jacks", "does {count_n} jumping jacks", "performs jumping jacks {count}"],
                      ["does star jumps", "exercises with jumping jacks"]),
    "wave": (["waves with the {hand} hand", "waves {hand} hand {count}", "raises the {hand} hand and waves"],
             ["says hello with the {hand} hand", "greets by waving the {hand} hand"]),
    "raise_arms": (["raises the {hand} arm {how}", "lifts the {hand} arm {how}", "puts the {hand} arm up {how}"],
                   ["holds the {hand} arm up {how}", "brings the {hand} arm overhead {how}"]),
    "punch": (["punches with the {hand} hand {count}", "throws {count_n} punches with the {hand} fist",
               "boxes with the {hand} hand {count}"],
              ["strikes forward with the {hand} fist {count}", "jabs using the {hand} hand {count}"]),
    "clap": (["claps {count}", "claps the hands {count}", "is clapping {count}"], ["applauds {count}", "claps their hands together {count}"]),
    "throw": (["throws something with the {hand} hand", "throws a ball with the {hand} arm"],
              ["tosses an object using the {hand} hand", "pitches with the {hand} arm"]),
    "reach_up": (["reaches up with the {hand} hand", "stretches the {hand} arm up to reach something"],
                 ["tries to grab something high with the {hand} hand", "reaches overhead with the {hand} hand"]),
    "point": (["points forward with the {hand} hand", "points at something with the {hand} arm"],
              ["indicates something ahead with the {hand} hand", "gestures forward with the {hand} finger"]),
    "kick": (["kicks with the {leg} leg", "kicks forward with the {leg} foot", "does a {leg} leg kick"],
             ["strikes forward with the {leg} foot", "kicks out using the {leg} leg"]),
    "squat": (["squats {count}", "does {count_n} squats", "squats down and stands up {count}"],
              ["bends the knees and lowers down {count}", "does knee bends {count}"]),
    "crouch": (["crouches down", "crouches low and stands back up"], ["ducks down low", "gets down into a crouch"]),
    "lunge": (["lunges forward with the {leg} leg", "does a lunge with the {leg} leg"],
              ["steps into a lunge on the {leg} leg", "lunges on the {leg} side"]),
    "bow": (["bows", "bows forward", "takes a bow"], ["bends forward at the waist", "leans forward in a bow"]),
    "kneel": (["kneels on the {knee} knee", "goes down on the {knee} knee and gets up"],
              ["drops to the {knee} knee", "kneels down on the {knee} knee"]),
    "sit_on_floor": (["sits down on the floor and stands up", "sits on the ground and gets back up"],
                     ["lowers to sit on the floor, then rises", "takes a seat on the ground and stands again"]),
    "stretch": (["stretches", "stretches the arms up and to the side", "does a stretch"],
                ["limbers up with the arms overhead", "stretches out the body"]),
    "stand": (["stands still", "stands in place", "is standing"], ["stays put", "remains standing"]),
    "look_around": (["looks around", "looks left and right", "turns the head to look around"],
                    ["glances around", "scans the surroundings"]),
    "shift_weight": (["shifts weight from one foot to the other", "sways from side to side"],
                     ["rocks from foot to foot", "leans from side to side"]),
}

THEN = [", then ", " and then ", ", after that ", " then "]
HELD_OUT_THEN = [", and afterwards ", " and next ", ". next, the person "]


def _fields(action: str, params: dict, held_out: bool) -> dict:
    counts = HELD_OUT_COUNTS if held_out else COUNTS
    fields = dict(params)
    if "count" in params:
        fields["count"] = counts[int(params["count"])]
        fields["count_n"] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}[int(params["count"])]
    if "speed" in params:
        fields["speed"] = {"slowly": "slowly", "normally": "", "quickly": "quickly"}[params["speed"]]
    if "degrees" in params:
        fields["degrees"] = int(params["degrees"])
    if action == "jump":
        fields["direction"] = "forward" if params["direction"] == "forward" else "in place"
    return fields


def phrase(action: str, params: dict, rng: np.random.Generator, held_out: bool) -> str:
    options = PHRASES[action][1 if held_out else 0]
    text = options[rng.integers(len(options))].format(**_fields(action, params, held_out))
    text = text.replace("the both", "both").replace("both hand", "both hands").replace("both arm", "both arms")
    text = text.replace("waves left hand", "waves the left hand").replace("waves right hand", "waves the right hand")
    return " ".join(text.split())


def caption(actions: list[tuple[str, dict]], rng: np.random.Generator, held_out: bool) -> str:
    subjects = HELD_OUT_SUBJECTS if held_out else SUBJECTS
    joins = HELD_OUT_THEN if held_out else THEN
    text = subjects[rng.integers(len(subjects))] + " " + phrase(*actions[0], rng, held_out)
    for action in actions[1:]:
        text += joins[rng.integers(len(joins))] + phrase(*action, rng, held_out)
    return text


def tag(text: str) -> str:
    """HumanML3D's second field, word/POS; a small closed-class tagger is enough here."""
    determiners = {"a", "an", "the", "this"}
    pronouns = {"someone", "their"}
    out = []
    for word in text.replace(",", " ").split():
        pos = "DET" if word in determiners else "PRON" if word in pronouns else "ADP" if word in {"to", "with", "on", "in", "at", "by", "of"} \
            else "NUM" if word.isdigit() else "NOUN" if word in {"person", "man", "woman", "figure", "human", "hand", "arm", "leg"} else "OTHER"
        out.append(f"{word}/{pos}")
    return " ".join(out)
