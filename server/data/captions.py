"""Caption templates. Each action has phrasings used for training and others held out
for evaluation only, so a test caption is worded in a way the model never read. Both
lists name the same parameters (speed, direction, hand, count), in different words
where the language allows.

A caption is a subject and one verb phrase per action: "a person waves with the left
hand twice, then jumps forward".
"""

import numpy as np

VERSION = 3

SUBJECTS = ["a person", "someone", "a man", "a woman", "the person", "a figure", "the subject", "he", "she", "a guy",
            "a girl", "a boy", "a child"]
HELD_OUT_SUBJECTS = ["a human", "the man", "this person", "an individual", "the human"]

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten"}
COUNTS = {1: "once", 2: "twice"} | {n: f"{word} times" for n, word in NUMBER_WORDS.items() if n > 2}
HELD_OUT_COUNTS = {1: "one time", 2: "two times"} | {n: f"{n} times" for n in NUMBER_WORDS if n > 2}

# action -> (training phrasings, held-out phrasings); fields come from the parameters.
PHRASES = {
    "walk": (["walks {direction} {speed}", "is walking {direction} {speed}", "takes steps {direction} {speed}",
              "walks {speed} {direction}"],
             ["strolls {direction} {speed}", "moves {direction} on foot {speed}"]),
    "jog": (["jogs forward", "is jogging forward", "jogs ahead at an easy pace"], ["runs slowly forward", "does a light jog ahead"]),
    "run": (["runs forward", "is running forward fast", "sprints forward"], ["dashes ahead", "runs quickly ahead"]),
    "walk_backward": (["walks backward {speed}", "is walking backwards {speed}", "steps backward {speed}"],
                      ["moves backwards on foot {speed}", "retreats walking backward {speed}"]),
    "start_stop": (["starts walking and then stops", "walks a few steps and stops"],
                   ["begins to walk, then comes to a halt", "sets off on foot and soon halts"]),
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
    "clap": (["claps {count}", "claps the hands {count}", "is clapping {count}"],
             ["applauds {count}", "claps their hands together {count}"]),
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

NEW_PHRASES = {
    # gaits with a character
    "march": (["marches forward {speed}", "is marching with high knees {speed}", "marched forward swinging the arms {speed}",
               "walks like a soldier {speed}"],
              ["parades forward lifting the knees high {speed}", "strides in a military march {speed}"]),
    "tiptoe": (["walks on tiptoes", "is tiptoeing forward", "tiptoed forward quietly", "walks forward on the toes"],
               ["creeps forward on the balls of the feet", "sneaks along on tiptoe"]),
    "sneak": (["sneaks forward crouching", "is sneaking forward slowly", "crept forward bent low",
               "walks crouched down carefully"],
              ["stalks forward in a crouch", "moves stealthily forward, hunched over"]),
    "limp": (["limps forward on a hurt {side} leg", "is limping, favouring the {side} leg", "limped forward with a bad {side} leg",
              "walks with a limp on the {side} side"],
             ["hobbles along, the {side} leg injured", "walks unevenly, sparing the {side} leg"]),
    "carry": (["carries a box forward {speed}", "walks forward carrying something in both arms {speed}",
               "is carrying a heavy box {speed}", "carried a box while walking {speed}"],
              ["hauls a package ahead {speed}", "walks holding a load in front {speed}"]),
    "stumble": (["stumbles while walking", "trips and catches the balance", "stumbled forward and recovered",
                 "is walking and stumbles"],
                ["loses footing for a moment while walking", "trips over something and keeps going"]),
    "jog_in_place": (["jogs in place", "is running on the spot", "jogged in place", "runs in place lifting the knees"],
                     ["jogs on the spot without moving forward", "does stationary running"]),
    # paths
    "zigzag": (["walks in a zigzag", "is zigzagging forward", "zigzagged forward left and right",
                "walks forward in a zig zag line"],
               ["weaves left and right while walking", "walks a zig-zag path ahead"]),
    "walk_diagonal": (["walks diagonally forward to the {side}", "is walking diagonally to the front {side}",
                       "walked forward and to the {side} at an angle", "heads diagonally {side}"],
                      ["moves diagonally ahead toward the {side}", "walks at a slant to the {side}"]),
    # stairs and obstacles
    "stairs_up": (["walks up the stairs", "climbs up {steps} steps", "is climbing stairs", "went up a flight of stairs",
                   "climbs the stairs leading with the {side} foot"],
                  ["ascends a staircase", "goes upstairs {steps} steps"]),
    "stairs_down": (["walks down the stairs", "goes down {steps} steps", "is walking downstairs", "came down a flight of stairs",
                     "descends the stairs leading with the {side} foot"],
                    ["heads downstairs", "steps down a staircase {steps} steps"]),
    "step_over": (["steps over something", "steps over an obstacle while walking", "is stepping over a box",
                   "stepped over something on the floor"],
                  ["lifts the legs high to cross an obstacle", "walks and clears an object on the ground"]),
    "spin": (["spins around to the {side}", "does a quick spin to the {side} on one foot", "spun around {degrees} degrees to the {side}",
              "is spinning to the {side}"],
             ["twirls {side}ward on one foot", "pirouettes to the {side}"]),
    # jumps
    "jump_over": (["jumps over something", "leaps forward over an obstacle", "jumped over a box", "does a long jump forward"],
                  ["hurdles over something in front", "bounds over an obstacle"]),
    "jump_turn": (["jumps and turns {degrees} degrees to the {side}", "does a jump turn to the {side}",
                   "is jumping and spinning around in the air", "jumped, turning {degrees} degrees {side}ward"],
                  ["leaps and rotates {degrees} degrees toward the {side} in midair", "does a {degrees} degree spin jump"]),
    "jump_backward": (["jumps backward {count}", "hops backwards with both feet {count}", "jumped back {count}",
                       "does {count_n} jumps backward"],
                      ["leaps backwards {count}", "springs back {count}"]),
    "jump_sideways": (["jumps to the {side} {count}", "jumps sideways to the {side} {count}", "jumped {side} {count}",
                       "does {count_n} side jumps to the {side}"],
                      ["leaps sideways toward the {side} {count}", "hops {side}ward with both feet {count}"]),
    "skip": (["skips forward", "is skipping forward", "skipped along happily", "skips {count}"],
             ["hops and skips ahead", "bounces forward in a skip"]),
    # chairs and the floor
    "sit_down": (["sits down on a chair", "takes a seat", "is sitting down on a chair", "sat down on a chair",
                  "lowers onto a chair and sits"],
                 ["has a seat on a chair", "settles down into a seat"]),
    "stand_up": (["stands up from a chair", "gets up from the chair", "is standing up from sitting", "stood up from a chair",
                  "rises from a seat"],
                 ["gets to the feet from a chair", "goes from sitting to standing"]),
    "lie_down": (["lies down on the back", "lies down on the floor", "is lying down on the ground", "lay down on the floor",
                  "gets down and lies on the back with the knees up"],
                 ["reclines on the ground face up", "stretches out on the floor on the back"]),
    "get_up": (["gets up from the floor", "stands up from lying on the ground", "is getting up off the floor",
                "got up from lying down"],
               ["rises from the ground to the feet", "picks themself up off the floor"]),
    "fall_down": (["falls down backwards", "falls over onto the back", "is falling to the ground", "fell down backward",
                   "loses balance and falls on the floor"],
                  ["topples over backwards onto the ground", "tumbles down and lands on the back"]),
    "hands_on_hips": (["puts the hands on the hips", "stands with hands on hips", "is standing with the hands on the hips",
                       "placed both hands on the hips"],
                      ["stands akimbo", "rests the fists on the waist"]),
    "salute": (["salutes with the {hand} hand", "gives a military salute with the {hand} hand", "is saluting",
                "saluted with the {hand} hand"],
               ["raises the {hand} hand to the forehead in salute", "greets like a soldier with the {hand} hand"]),
    "jump_rope": (["jumps rope", "skips rope {count}", "is jumping rope", "jumped rope {count}"],
                  ["does rope skipping {count}", "hops over a skipping rope {count}"]),
    "crawl": (["crawls forward on hands and knees", "gets down and crawls forward", "is crawling on all fours",
               "crawled forward on the hands and knees", "crawls like a baby, leading with the {side} knee"],
              ["moves ahead on all fours", "creeps forward on hands and knees"]),
    "pick_up": (["picks something up from the floor with the {hand} hand", "bends down and picks up an object with the {hand} hand",
                 "picked up something from the ground with the {hand} hand", "is picking an item up off the floor"],
                ["lifts an object off the ground using the {hand} hand", "reaches down and grabs something from the floor"]),
    "push": (["pushes something {count}", "pushes forward with both hands {count}", "is pushing a heavy object",
              "pushed a door open"],
             ["shoves something in front {count}", "presses forward with both arms {count}"]),
    "pull": (["pulls something {count}", "pulls a rope toward the body {count}", "is pulling something heavy",
              "pulled a door open"],
             ["tugs on something in front {count}", "drags something toward the chest {count}"]),
    # gestures
    "drink": (["drinks from a cup with the {hand} hand", "takes a sip with the {hand} hand", "is drinking from a glass",
               "drank from a bottle in the {hand} hand"],
              ["brings a cup to the mouth with the {hand} hand", "sips a drink held in the {hand} hand"]),
    "phone_call": (["talks on the phone held in the {hand} hand", "holds a phone to the ear with the {hand} hand",
                    "is on a phone call", "answered the phone with the {hand} hand"],
                   ["makes a call, the phone in the {hand} hand", "puts a phone to the ear using the {hand} hand"]),
    "nod": (["nods {count}", "nods the head {count}", "is nodding yes", "nodded {count}"],
            ["bobs the head up and down {count}", "agrees with a nod {count}"]),
    "shake_head": (["shakes the head {count}", "shakes the head no", "is shaking the head", "shook the head {count}"],
                   ["turns the head side to side saying no {count}", "refuses with a head shake {count}"]),
    "cross_arms": (["crosses the arms", "folds the arms across the chest", "is standing with crossed arms", "crossed the arms"],
                   ["stands with arms folded", "puts the arms across the chest"]),
    "balance": (["stands on the {side} leg", "balances on the {side} foot", "is balancing on one leg, the {side} one",
                 "stood on the {side} leg with the arms out"],
                ["keeps balance on the {side} foot alone", "holds a one legged stance on the {side} leg"]),
    # exercises
    "arm_circles": (["does arm circles {how}", "circles the arms {how} {count}", "is rotating the arms in circles",
                     "made {count_n} arm circles {how}"],
                    ["swings the arms around in circles {how}", "rotates both outstretched arms {count}"]),
    "toe_touch": (["touches the toes {count}", "bends down to touch the toes {count}", "is touching the toes",
                   "bent over and touched the toes {count}"],
                  ["reaches down to the feet with straight legs {count}", "folds forward to the toes {count}"]),
    "torso_twist": (["twists the torso left and right {count}", "does torso twists {count}", "is twisting at the waist",
                     "rotated the upper body side to side {count}"],
                    ["turns the trunk from side to side {count}", "does waist rotations {count}"]),
    # sport
    "throw_underhand": (["throws underhand with the {hand} hand", "tosses a ball underhand with the {hand} hand",
                         "is throwing something underarm", "threw a ball underhand with the {hand} arm"],
                        ["lobs something with the {hand} hand from below", "pitches underarm using the {hand} arm"]),
    "swing_bat": (["swings a baseball bat", "swings a bat from the {hand} side", "is swinging a bat",
                   "swung a bat like a baseball player"],
                  ["hits with a bat, swinging from the {hand}", "takes a swing with a baseball bat"]),
    "swing_racket": (["swings a tennis racket with the {hand} hand", "hits a forehand with the {hand} hand",
                      "is playing tennis, swinging with the {hand} arm", "swung a racket with the {hand} hand"],
                     ["strikes a forehand using the {hand} hand", "returns a ball with a {hand} handed racket swing"]),
    "golf_swing": (["swings a golf club", "does a golf swing", "is swinging a golf club", "hit a golf ball"],
                   ["tees off with a golf club", "drives a golf ball"]),
    "boxing_combo": (["throws a jab, a cross and a hook, leading with the {hand} hand",
                      "boxes a combination {count}", "is throwing a boxing combo", "punched a jab cross hook combination {count}"],
                     ["shadowboxes a three punch combo {count}", "fires off a one two and a hook, {hand} hand leading"]),
    # dances
    "dance_groove": (["dances side to side {speed}", "grooves to the music {speed}", "is dancing, swaying from side to side",
                      "danced with the arms swinging"],
                     ["bops to a beat, rocking side to side", "moves to music with a bounce"]),
    "dance_twist": (["does the twist", "dances the twist", "is doing the twist dance", "twisted the hips dancing"],
                    ["swivels the hips in a twist dance", "dances twisting the hips and shoulders"]),
    "salsa": (["dances salsa", "does the salsa basic step {count}", "is dancing salsa", "danced a few salsa steps"],
              ["steps forward and back in a salsa rhythm {count}", "does latin dance steps {count}"]),
}
PHRASES |= NEW_PHRASES

# More training phrasings for every action (version 3): tenses, "is ...ing", plainer and
# looser wordings. None repeats a held-out phrasing's wording of the same action, and none
# is written from the evaluation's prompts (server/eval/prompts.py), which must stay unseen.
MORE_PHRASES = {
    "walk": ["walked {direction} {speed}", "is taking a walk {direction} {speed}", "steps along {direction} {speed}",
             "walks a few steps {direction} {speed}", "goes for a walk {direction} {speed}"],
    "jog": ["jogged forward", "goes for a jog", "trots forward", "is jogging ahead at a gentle pace"],
    "run": ["ran forward", "is sprinting ahead", "runs at full speed", "takes off running forward", "rushes forward at a run"],
    "walk_backward": ["walked backwards {speed}", "takes a few steps back {speed}", "goes backward {speed}",
                      "is stepping back {speed}", "walks back {speed}"],
    "start_stop": ["walks forward briefly, then stands still", "took a few steps and stopped", "is walking, then stops"],
    "side_step": ["stepped sideways to the {side}", "is side stepping to the {side}", "walks sideways to the {side}"],
    "turn": ["turned {degrees} degrees to the {side}", "is turning to the {side}", "turns to face the {side}",
             "turns {side} {degrees} degrees", "makes a {degrees} degree turn to the {side}"],
    "circle": ["walked in a circle to the {side}", "is walking in a {side} circle"],
    "jump": ["jumped {direction} {count}", "is jumping {direction}", "takes {count_n} jumps {direction}",
             "pushes off with both feet and jumps {direction} {count}", "jumps {direction} with both legs {count}"],
    "hop": ["hopped on the {side} leg {count}", "is hopping on the {side} foot", "hops on one foot, the {side}, {count}"],
    "jumping_jacks": ["did {count_n} jumping jacks", "is doing jumping jacks",
                      "jumps spreading the arms and legs {count}"],
    "wave": ["waved the {hand} hand {count}", "is waving with the {hand} hand", "gives a wave with the {hand} hand",
             "waves the {hand} arm in the air"],
    "raise_arms": ["raised the {hand} arm {how}", "is raising the {hand} arm {how}", "lifts up the {hand} arm {how}"],
    "punch": ["punched with the {hand} hand {count}", "is punching with the {hand} hand",
              "hits forward with the {hand} hand {count}"],
    "clap": ["clapped {count}", "is clapping the hands"],
    "throw": ["threw a ball with the {hand} hand", "is throwing overhand with the {hand} arm",
              "throws overhand with the {hand} arm"],
    "reach_up": ["reached up with the {hand} hand", "is reaching up high with the {hand} hand",
                 "stretches up to get something with the {hand} hand"],
    "point": ["pointed forward with the {hand} hand", "is pointing ahead with the {hand} hand"],
    "kick": ["kicked with the {leg} leg", "is kicking with the {leg} foot", "kicks the {leg} leg forward",
             "kicks out in front with the {leg} foot"],
    "squat": ["squatted {count}", "is squatting", "squats down low {count}", "lowers the hips into a squat {count}"],
    "crouch": ["crouched down", "is crouching", "crouches and rises again"],
    "lunge": ["lunged forward with the {leg} leg", "is lunging forward on the {leg} leg"],
    "bow": ["bowed", "is bowing", "bows politely"],
    "kneel": ["knelt on the {knee} knee", "is kneeling on the {knee} knee", "goes down to the {knee} knee"],
    "sit_on_floor": ["sat on the floor and got up", "is sitting down on the floor, then stands",
                     "sits on the floor for a moment and gets up again"],
    "stretch": ["stretched", "is stretching the arms"],
    "stand": ["stood still", "is standing still", "waits in place", "stood in place"],
    "look_around": ["looked around", "is looking around", "looks to the left and to the right"],
    "shift_weight": ["shifted the weight from one foot to the other", "is swaying side to side"],
    "march": ["is marching {speed}", "walks forward in a march {speed}"],
    "tiptoe": ["tiptoes forward", "moves quietly on the toes"],
    "sneak": ["sneaked forward", "sneaks ahead quietly"],
    "limp": ["limps on the {side} leg", "is walking with a limp on the {side} leg"],
    "carry": ["carries something heavy forward {speed}", "is walking with a box in the arms {speed}"],
    "stumble": ["stumbled", "trips while walking and recovers"],
    "jog_in_place": ["is jogging in place", "runs on the spot"],
    "zigzag": ["walks zigzag", "zigzags forward"],
    "walk_diagonal": ["walks forward at an angle to the {side}", "is walking diagonally {side}"],
    "stairs_up": ["climbs up the stairs", "walked up {steps} steps", "goes up the stairs"],
    "stairs_down": ["climbs down the stairs", "walked down {steps} steps", "goes down the stairs"],
    "step_over": ["steps over a box", "stepped over an obstacle"],
    "spin": ["spins {degrees} degrees to the {side}", "spun to the {side}",
             "turns around quickly on one foot to the {side}"],
    "jump_over": ["jumps over an obstacle", "is jumping over something"],
    "jump_turn": ["jumps turning {degrees} degrees to the {side}"],
    "jump_backward": ["jumps back {count}", "is jumping backward", "jumps backwards with both feet {count}"],
    "jump_sideways": ["is jumping to the {side}", "jumps to the {side} side {count}", "jumped sideways to the {side}"],
    "skip": ["skipped forward {count}", "is skipping along"],
    "sit_down": ["sits on a chair", "sat down", "sits down in a chair"],
    "stand_up": ["got up from a chair", "stands up from sitting"],
    "lie_down": ["lies on the floor", "lay down on the back"],
    "get_up": ["gets back up from the floor", "got up off the ground"],
    "fall_down": ["falls backward to the ground", "falls down"],
    "hands_on_hips": ["has the hands on the hips"],
    "salute": ["salutes"],
    "jump_rope": ["skips with a rope {count}"],
    "crawl": ["crawls on hands and knees", "is crawling forward"],
    "pick_up": ["picks up something off the floor with the {hand} hand", "bends over to pick something up"],
    "push": ["pushes a heavy box {count}", "pushed something forward"],
    "pull": ["pulls on a rope {count}", "pulled something toward the body"],
    "drink": ["drinks with the {hand} hand", "is taking a drink with the {hand} hand"],
    "phone_call": ["is talking on the phone", "takes a phone call with the {hand} hand"],
    "nod": ["nods yes {count}"],
    "shake_head": ["shakes the head no {count}"],
    "cross_arms": ["stands with the arms crossed"],
    "balance": ["balances on one leg, the {side} one"],
    "arm_circles": ["circles the arms {how}"],
    "toe_touch": ["touched the toes {count}"],
    "torso_twist": ["twists the upper body {count}"],
    "throw_underhand": ["throws something underhand with the {hand} hand"],
    "swing_bat": ["swings a bat"],
    "swing_racket": ["plays tennis with the {hand} hand"],
    "golf_swing": ["plays golf, swinging a club"],
    "boxing_combo": ["throws a combination of punches {count}"],
    "dance_groove": ["dances {speed}", "is dancing to the music"],
    "dance_twist": ["is dancing the twist"],
    "salsa": ["dances some salsa steps"],
}
for _action, _more in MORE_PHRASES.items():
    PHRASES[_action] = (PHRASES[_action][0] + _more, PHRASES[_action][1])

# Modifiers the motion carries in its parameters, named after the action's phrase.
MODIFIERS = {
    "style": {"tired": (["looking tired", "wearily", "as if exhausted"], ["in a fatigued manner", "drained of energy"]),
              "happy": (["happily", "with a bounce in the step", "cheerfully"], ["in a joyful mood", "gleefully"]),
              "angry": (["angrily", "in an angry way", "furiously"], ["in a rage", "full of anger"]),
              "cautious": (["cautiously", "carefully", "warily"], ["with great caution", "gingerly"])},
    "steps": {"small": (["with small steps", "taking short steps"], ["in tiny strides"]),
              "big": (["with big steps", "taking long strides"], ["in large strides"])},
    "speed": {"slowly": (["slowly", "at a slow pace"], ["unhurriedly", "in slow motion"]),
              "quickly": (["quickly", "fast"], ["rapidly", "briskly"])},
    "size": {"small": (["with small movements", "a little"], ["slightly", "in a subtle way"]),
             "big": (["with big movements", "energetically"], ["expansively", "with large motions"])},
}

THEN = [", then ", " and then ", ", after that ", " then "]
HELD_OUT_THEN = [", and afterwards ", " and next ", ". next, the person "]


def _fields(action: str, params: dict, held_out: bool) -> dict:
    counts = HELD_OUT_COUNTS if held_out else COUNTS
    fields = dict(params)
    if "count" in params:
        fields["count"] = counts[int(params["count"])]
        fields["count_n"] = NUMBER_WORDS[int(params["count"])]
    if "speed" in params:
        fields["speed"] = {"slowly": "slowly", "normally": "", "quickly": "quickly"}[params["speed"]]
    if "degrees" in params:
        fields["degrees"] = int(params["degrees"])
    if action == "jump":
        fields["direction"] = "forward" if params["direction"] == "forward" else "in place"
    return fields


def phrase(action: str, params: dict, rng: np.random.Generator, held_out: bool) -> str:
    options = PHRASES[action][1 if held_out else 0]
    template = options[rng.integers(len(options))]
    text = template.format(**_fields(action, params, held_out))
    for name, words in MODIFIERS.items():
        # Named once: phrasings that place the modifier themselves ("walks {speed}") keep it there.
        if params.get(name) in words and "{" + name + "}" not in template:
            choices = words[params[name]][1 if held_out else 0]
            text += " " + choices[rng.integers(len(choices))]
    text = text.replace("the both", "both").replace("both hand", "both hands").replace("both arm", "both arms")
    for plural, single in (("jumping jacks", "jumping jack"), ("squats", "squat"), ("jumps", "jump"), ("punches", "punch"),
                           ("arm circles", "arm circle")):
        text = text.replace(f"one {plural}", f"one {single}").replace(f"one side {plural}", f"one side {single}")
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
        pos = ("DET" if word in determiners else "PRON" if word in pronouns
               else "ADP" if word in {"to", "with", "on", "in", "at", "by", "of"}
               else "NUM" if word.isdigit()
               else "NOUN" if word in {"person", "man", "woman", "figure", "human", "hand", "arm", "leg"} else "OTHER")
        out.append(f"{word}/{pos}")
    return " ".join(out)
