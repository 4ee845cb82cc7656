#!/usr/bin/env python3
"""Generate the synthetic ``advice`` example data set for ``textheads demo``.

Every text is assembled from the hand-written fragments below (nothing is
downloaded).  The output is deterministic: ``random.Random(7)`` drives every
choice, and only lists (never sets) are iterated, so the files are identical
on every run and Python version.

Writes train.jsonl, dev.jsonl and test.jsonl next to this script.  Each line:

    {"text": str, "advice": [tags], "audience": str | null,
     "helpfulness": float | null}

Regenerate with:  python examples/advice/make_data.py
"""

import json
import os
import random
import re

SEED = 7
N_TRAIN, N_DEV, N_TEST = 420, 90, 90
MAX_WORDS = 60

PROG, BEGIN, COOK, HEALTH, NOT = (
    "programming_advice",
    "advice_for_beginners",
    "cooking_advice",
    "health_advice",
    "not_advice",
)
TAG_ORDER = [PROG, BEGIN, COOK, HEALTH, NOT]
LEVELS = ["beginner", "intermediate", "expert"]

SEED_ROW = {
    "text": (
        "my advice is that you go ahead with your plans to learn Python, "
        "because its syntax is easy for beginners. It's also great for snake "
        "lovers like me!"
    ),
    "advice": [PROG, BEGIN],
    "audience": "beginner",
    "helpfulness": 4.1,
}

# ---------------------------------------------------------------------------
# Advice fragments: (action, reason).  Actions start with a base-form verb so
# they fit every template ("I'd ...", "try to ...", "First, ...").
# ---------------------------------------------------------------------------
TOPIC_UNITS = {
    PROG: {
        "beginner": [
            ("pick one language, like Python, and stick with it for a few months", "jumping between languages slows your progress"),
            ("type the code from tutorials yourself instead of copy-pasting it", "your fingers and brain learn the syntax together"),
            ("write small programs that solve problems you actually have", "you stay motivated when the code is useful to you"),
            ("read the Python error message slowly before searching for it", "Python usually tells you the exact line that broke"),
            ("save your work with git even on tiny projects", "being able to undo mistakes takes the fear out of experimenting"),
            ("use print statements to see what your variables hold", "it's the simplest way to understand what your code is doing"),
            ("give your variables and functions clear names", "you will forget what x2 meant by next week"),
            ("build a tiny project like a to-do list or a dice game in Python", "finishing something small teaches more than another tutorial"),
            ("practice coding for 30 minutes a day rather than one long session a week", "regular practice makes the syntax stick"),
            ("post the code you tried and the full error when you ask for help", "people can only debug what they can see"),
            ("install an editor like VS Code that highlights your syntax", "it catches typos before you even run the program"),
            ("split a big problem into small functions you can test one at a time", "smaller pieces are much easier to debug"),
            ("keep a notes file of code snippets and commands you learn", "you'll end up looking things up there constantly"),
        ],
        "intermediate": [
            ("write unit tests for your functions with pytest", "tests let you refactor without breaking things"),
            ("use a virtual environment for every Python project", "it keeps each project's dependencies from clashing"),
            ("commit to git in small, focused chunks with clear messages", "small commits are much easier to review and revert"),
            ("learn the debugger and set breakpoints instead of sprinkling print calls everywhere", "you can inspect every variable at the moment things go wrong"),
            ("run a linter like ruff or flake8 on your code before each commit", "it catches unused imports and sloppy mistakes automatically"),
            ("read other people's code on GitHub", "you pick up idioms and project structure that tutorials never cover"),
            ("add type hints to your Python functions", "your editor can then warn you about wrong arguments"),
            ("refactor any function longer than a screen into smaller ones", "long functions are where bugs hide"),
            ("learn git branching so you can try ideas without touching main", "a failed experiment is then just a branch you delete"),
            ("write a README for every repo, even private ones", "future you will need to know how to run the code"),
            ("learn list comprehensions and generators in Python", "they make data-processing code shorter and often faster"),
            ("set up a formatter like black so nobody argues about code style", "consistent formatting keeps diffs readable"),
            ("contribute a small fix to an open source Python project", "code review from maintainers teaches you a lot"),
        ],
        "expert": [
            ("profile with py-spy or cProfile before optimizing anything", "the hot path is rarely where you expect it"),
            ("use git bisect to find the commit that introduced the regression", "a binary search over history beats guessing"),
            ("pin transitive dependencies with a lockfile and rebuild it in CI", "a minor release upstream can otherwise silently break your build"),
            ("check the compiler's inlining and vectorization reports with -O2 enabled", "the generated assembly often differs from what you assume"),
            ("prefer composition over inheritance in your domain model", "deep class hierarchies couple unrelated code"),
            ("run your test suite under sanitizers like ASan and UBSan", "undefined behavior in C code can hide for years"),
            ("write property-based tests with Hypothesis for your parsers", "it finds edge cases nobody would write by hand"),
            ("keep interfaces narrow and avoid abstracting until a third caller needs it", "the wrong abstraction costs more than duplicated code"),
            ("add structured logging and tracing before you need to debug production", "you cannot attach a debugger to a live incident"),
            ("benchmark with realistic data and pin CPU frequency scaling", "microbenchmarks on toy inputs lie about cache behavior"),
            ("squash fixup commits with an interactive git rebase before merging", "a clean history keeps bisect and blame useful"),
            ("release the GIL in your C extension around the heavy loop", "otherwise your Python threads just take turns"),
            ("memoize pure functions with functools.lru_cache and monitor the hit rate", "unbounded caching can quietly blow up memory"),
        ],
    },
    COOK: {
        "beginner": [
            ("read the whole recipe before you start cooking", "you won't discover halfway through that the dough needs to rest overnight"),
            ("salt your pasta water generously", "it's your only chance to season the pasta itself"),
            ("buy a cheap oven thermometer", "most home ovens run hotter or colder than the dial says"),
            ("start with simple recipes like omelettes, soups and pasta", "they teach the basic techniques without much risk"),
            ("chop all your vegetables before you turn on the stove", "things happen fast once the pan is hot"),
            ("taste your food as you cook and adjust the salt", "a recipe can't know how salty your stock is"),
            ("keep your kitchen knife sharp", "a dull knife slips and is more dangerous than a sharp one"),
            ("follow baking recipes exactly the first few times", "baking is more chemistry than improvisation"),
            ("cook rice with a measured ratio of one cup rice to two cups water", "guessing is why rice turns out mushy"),
            ("let meat rest for a few minutes after cooking", "the juices stay in instead of running onto the board"),
            ("set a timer for everything that goes in the oven", "it's easy to forget the cookies while you clean up"),
            ("avoid crowding the pan when frying", "crowded food steams instead of browning"),
            ("buy a few basic spices like cumin, paprika and oregano first", "they cover most everyday recipes"),
        ],
        "intermediate": [
            ("toast whole spices in a dry pan before grinding them", "it brings out far more aroma"),
            ("finish your pasta in the sauce with a splash of starchy pasta water", "the starch helps the sauce cling"),
            ("salt meat at least an hour before cooking", "the salt penetrates and the surface dries for a better sear"),
            ("make your own stock from leftover bones and vegetable scraps", "it adds body to soups and sauces that store-bought can't match"),
            ("use a kitchen scale for baking instead of cups", "weighing flour is far more consistent than scooping it"),
            ("add a squeeze of lemon or a dash of vinegar when a sauce tastes flat", "acid brightens flavors more than extra salt"),
            ("preheat your cast iron pan properly before searing", "a hot pan gives you a crust instead of grey meat"),
            ("roast vegetables in a hot oven, around 220C", "the edges caramelize instead of going soggy"),
            ("layer your spices, adding some early and some at the end", "you get both deep and fresh flavors"),
            ("keep a batch of caramelized onions in the fridge", "they make weeknight recipes taste slow-cooked"),
            ("make a quick pan sauce after frying chicken", "the browned bits in the pan are free flavor"),
            ("chill cookie dough in the fridge overnight", "the flavor deepens and the cookies spread less in the oven"),
            ("cook pasta a minute short of the packet time", "it keeps cooking once it hits the sauce"),
        ],
        "expert": [
            ("dry-brine the bird uncovered in the fridge for 24 to 48 hours", "dehydrated skin renders and crisps far better in the oven"),
            ("deglaze the fond with wine and mount the sauce with cold butter off the heat", "the emulsion stays glossy instead of breaking"),
            ("bloom ground spices in hot fat before adding any liquid", "many aroma compounds are fat-soluble"),
            ("use 2 percent salt by weight of the vegetables for a lacto-ferment", "it suppresses spoilage while the lactobacillus does its work"),
            ("cook the steak sous vide at 54C and sear it hard for under a minute a side", "you get edge-to-edge doneness without a grey band"),
            ("autolyse your bread dough for 30 minutes before adding the salt", "gluten develops with far less kneading"),
            ("raise the surface pH with a pinch of baking soda to speed up Maillard browning", "a slightly alkaline surface browns faster"),
            ("temper chocolate by seeding it with chopped tempered chocolate at 31C", "it sets stable type V crystals with a clean snap"),
            ("reverse-sear thick cuts in a low oven before finishing them in a smoking hot pan", "it gives precise control over the internal temperature"),
            ("reduce the wine and shallots almost dry in the pan before whisking butter into a beurre blanc", "too much liquid thins the emulsion until it breaks"),
            ("toast the rice in fat and add hot stock gradually when making risotto", "the grains stay distinct and cook evenly"),
            ("keep extruded pasta dough around 32 percent hydration", "wetter dough gums up a bronze die"),
            ("grind your garam masala fresh and add it at the very end of the recipe", "volatile aromatics fade under long heat"),
        ],
    },
    HEALTH: {
        "beginner": [
            ("go to bed and wake up at the same time every day", "a steady schedule makes falling asleep much easier"),
            ("start with a 20-minute walk every day before trying harder exercise", "it builds the habit without wrecking your legs"),
            ("drink a glass of water after a night's sleep", "your body wakes up a little dehydrated"),
            ("stretch for five minutes after every workout", "your muscles will feel less stiff the next day"),
            ("see a doctor if the pain lasts more than a couple of weeks", "it's better to rule out something serious early"),
            ("leave your phone in another room at night so it can't cut into your sleep", "scrolling in bed keeps you awake longer than you think"),
            ("pick a kind of exercise you actually enjoy, like swimming or dancing", "you'll keep doing it"),
            ("warm up for a few minutes before you exercise", "cold muscles get injured more easily"),
            ("take the stairs instead of the elevator when you can", "small bits of exercise add up over a week"),
            ("ask your doctor before starting a new diet or supplement", "some supplements interact with medication"),
            ("aim for seven to nine hours of sleep", "almost everything feels harder when you're tired"),
            ("rest a day between hard workouts", "muscles get stronger while they recover, not while you train"),
            ("add one extra portion of vegetables to your day for your health", "small changes are easier to keep for good"),
        ],
        "intermediate": [
            ("follow a simple full-body strength workout three times a week", "consistent training beats random workouts"),
            ("track your sleep for two weeks and look for patterns", "you may find that caffeine after 2pm is the culprit"),
            ("add mobility and stretching work for your hips and upper back", "most desk-related aches start there"),
            ("get a yearly checkup with blood work from your doctor", "it catches issues like low vitamin D early"),
            ("keep your bedroom cool, dark and quiet", "a room around 18C helps you sleep more deeply"),
            ("increase your running mileage by no more than about 10 percent a week", "ramping up too fast is the classic route to shin splints"),
            ("eat roughly 1.6 grams of protein per kilo of body weight if you lift", "your muscles need it to recover after exercise"),
            ("cut out caffeine after lunch", "it stays in your system for six hours or more and hurts your sleep"),
            ("foam roll tight areas before stretching", "it makes the stretching noticeably more effective"),
            ("log your workouts so you can see progress", "it keeps you honest about whether you're actually improving"),
            ("schedule exercise in your calendar like an appointment", "it stops other things from crowding it out"),
            ("see a physiotherapist instead of pushing through a nagging knee injury", "early treatment usually means a shorter recovery"),
            ("get some daylight within an hour of waking", "it anchors your body clock and improves sleep at night"),
        ],
        "expert": [
            ("periodize your training into blocks and deload every fourth week", "accumulated fatigue masks your real fitness"),
            ("keep most cardio in zone 2 and limit intense exercise to two sessions a week", "a polarized model builds aerobic base without overtraining"),
            ("auto-regulate your lifting with RPE instead of fixed percentages", "daily readiness varies with sleep and stress"),
            ("ask your doctor to check ferritin, not just hemoglobin, if you do endurance training", "iron stores can be depleted long before anemia shows up"),
            ("use double progression on reps and load for your main lifts", "it keeps the workout stimulus increasing without guesswork"),
            ("anchor your circadian sleep rhythm with fixed wake times and morning light", "sleep onset follows the wake signal more than the bedtime"),
            ("track heart rate variability trends rather than single readings to guide training", "day-to-day HRV noise is huge"),
            ("include eccentric exercise like Nordic curls for hamstring injury prevention", "the evidence for reduced strain rates is strong"),
            ("save long static stretching for after training rather than before heavy lifts", "long static holds can reduce force output"),
            ("get a sleep study from a doctor if you snore and wake unrefreshed", "untreated sleep apnea drives cardiovascular risk"),
            ("time your carbohydrate intake around exercise sessions", "glycogen availability limits high-intensity output"),
            ("monitor training load as session RPE times duration", "a spiking acute-to-chronic load ratio flags injury risk"),
            ("prioritize hard sets of compound lifts near failure over long accessory circuits", "mechanical tension is the main driver of hypertrophy"),
        ],
    },
}

# Fragments that are advice on two topics at once: (tags, level, action, reason).
BRIDGE_UNITS = [
    ([PROG, HEALTH], "intermediate", "take breaks from the keyboard every hour of coding and stretch your wrists and neck", "long coding sessions without moving are hard on your body"),
    ([PROG, HEALTH], "beginner", "stop coding an hour before bed and get real sleep instead of debugging at 2am", "tired brains write the bugs you fix tomorrow"),
    ([PROG, HEALTH], "intermediate", "raise your monitor to eye level while you code", "hunching over a laptop all day gives you neck and back pain"),
    ([PROG, HEALTH], "beginner", "use the Pomodoro technique while programming and walk around during each break", "short bits of exercise keep you focused"),
    ([PROG, HEALTH], "expert", "switch to a split ergonomic keyboard and see a doctor early if coding gives you wrist pain", "RSI is much easier to treat before it becomes chronic"),
    ([PROG, HEALTH], "intermediate", "go for a walk when you're stuck on a bug instead of staring at the code", "a bit of exercise often shakes the answer loose"),
    ([COOK, HEALTH], "intermediate", "cook a big pot of lentil soup on Sunday so you eat well after your workouts", "home cooking makes it easier to hit your protein and vegetable goals"),
    ([COOK, HEALTH], "beginner", "swap deep frying for roasting in the oven with a little olive oil for your heart health", "your doctor will like your cholesterol numbers better"),
    ([COOK, HEALTH], "beginner", "season your recipes with herbs and spices instead of extra salt for the sake of your health", "it's easier on your blood pressure and still tastes great"),
    ([COOK, HEALTH], "intermediate", "meal prep high-protein lunches like chicken and rice bowls", "it supports recovery from exercise without relying on takeout"),
    ([COOK, HEALTH], "expert", "batch-cook your meals and log macros for your training using cooked weights", "raw and cooked yields differ by 25 percent or more, which skews your tracking"),
    ([COOK, HEALTH], "beginner", "eat a real dinner you cooked yourself instead of snacking right before bed", "heavy snacks close to bedtime wreck your sleep"),
    ([PROG, COOK], "beginner", "write a small Python script that scales your recipes by number of servings", "it's a fun first project that you'll actually use in the kitchen"),
    ([PROG, COOK], "intermediate", "build a recipe database with Python and SQLite as a side project", "it's practical code practice and your pasta recipes finally get organized"),
    ([PROG, HEALTH], "beginner", "keep a water bottle on your desk and stand up between coding exercises", "sitting still for hours is rough on your back"),
    ([PROG, HEALTH], "intermediate", "use a standing desk for part of your programming day", "alternating positions eases back strain better than any single posture"),
    ([PROG, HEALTH], "intermediate", "follow the 20-20-20 rule during long debugging sessions and look 20 feet away every 20 minutes to rest your eyes", "it cuts the eye strain from staring at code"),
    ([PROG, HEALTH], "expert", "protect your sleep during on-call weeks and keep deep-work coding blocks in your circadian peak", "fatigue-driven mistakes in production cost more than the lost hours"),
    ([COOK, HEALTH], "intermediate", "cook oatmeal with fruit before your morning workout", "slow carbs fuel the exercise without a sugar crash"),
    ([COOK, HEALTH], "beginner", "learn a few simple vegetable recipes like stir-fries and soups for your health", "eating more vegetables is the easiest health win any doctor will recommend"),
    ([COOK, HEALTH], "expert", "cook with extra-virgin olive oil and keep ultra-processed snacks out of the kitchen if your doctor flagged your LDL", "dietary pattern matters more than any single supplement"),
    ([COOK, HEALTH], "intermediate", "freeze portions of bean chili for busy training weeks", "you'll always have a protein-rich meal ready after exercise"),
    ([PROG, COOK], "beginner", "write a Python program that picks a random dinner recipe from a list", "it's a gentle first coding project with a tasty payoff"),
    ([PROG, COOK], "intermediate", "automate your weekly meal plan and grocery list with a small script and a CSV of recipes", "it's real-world code practice and saves you time in the kitchen"),
    ([PROG, COOK], "expert", "write a Python scraper that turns your saved recipes into JSON and parses ingredient quantities", "parsing messy units like 'a pinch' is a surprisingly good programming exercise"),
]

# Advice about topics outside the tag set -> advice == [] (no advice tag).
OTHER_UNITS = [
    ("book train tickets a few weeks ahead", "prices usually climb as the date approaches"),
    ("keep three months of expenses in a savings account", "it turns a surprise bill into an inconvenience instead of a crisis"),
    ("water your tomato plants in the morning rather than the evening", "wet leaves overnight invite mildew"),
    ("check your tyre pressure once a month", "underinflated tyres waste fuel and wear unevenly"),
    ("photograph the apartment before you move in", "it protects your deposit when you move out"),
    ("research the company and prepare two questions before the interview", "interviewers notice when you're genuinely curious"),
    ("read the rental contract twice before you sign", "the awkward clauses are usually near the end"),
    ("label moving boxes by room, not by contents", "unloading goes twice as fast"),
    ("compare insurance quotes every year instead of auto-renewing", "loyal customers often end up paying more"),
    ("pack a change of clothes in your carry-on when you fly", "checked luggage really does get lost"),
    ("repot houseplants in spring when they start growing again", "the roots recover faster"),
    ("set up an automatic transfer into savings on payday", "you won't miss money you never see"),
    ("negotiate the salary after you get the offer, not before", "that's when you have the most leverage"),
    ("back up your photos to two different places", "a single drive will fail eventually"),
    ("tailor your cover letter to the specific job", "generic letters are obvious to recruiters"),
    ("get at least three quotes before hiring a contractor", "prices for the same job vary wildly"),
    ("learn a few phrases in the local language before you travel", "people are much friendlier when you try"),
    ("mulch your garden beds in early summer", "it keeps the soil moist and the weeds down"),
    ("keep receipts for anything you might return", "many shops won't budge without one"),
    ("use a password manager for your accounts", "reused passwords are how most accounts get taken over"),
    ("have your car battery checked before winter", "cold weather is when weak batteries die"),
    ("track shared bills with your roommates in one spreadsheet", "it avoids awkward arguments about who paid what"),
    ("visit the neighbourhood at night before signing a lease", "a quiet street at noon can be loud at midnight"),
    ("write down your questions before calling customer service", "you'll get everything sorted in one call"),
]

# General advice aimed at newcomers, no specific topic -> [advice_for_beginners].
BEGINNER_GENERAL_UNITS = [
    ("ask questions even when they feel silly", "everyone in this community was new once"),
    ("focus on one thing at a time", "trying to learn everything at once leads to burnout"),
    ("compare yourself to where you were last month, not to people with years of experience", "that's the only comparison that means anything"),
    ("find a study buddy or a mentor", "having someone to ask speeds everything up"),
    ("keep a journal of what you learn each week", "seeing progress on paper keeps you motivated"),
    ("expect to be bad at it for a while", "that's simply what learning looks like"),
    ("celebrate the small wins", "they add up faster than you'd think"),
    ("pick one good resource and finish it before hunting for another", "collecting resources feels productive but isn't"),
]

BEGINNER_PREFIXES = [
    "if you're just starting out, ", "as a beginner, ", "since you're new to this, ",
    "when you're first learning, ", "as someone brand new, ", "while you're still a beginner, ",
    "if this is your first time, ", "for a total newbie, ",
]
BEGINNER_SENTENCES = [
    "Don't worry about the advanced stuff yet.",
    "Everyone was a beginner once, so go easy on yourself.",
    "Ignore the people arguing about advanced edge cases for now.",
    "It's normal to feel lost in your first few weeks.",
    "Beginners tend to overthink this, so keep it simple.",
    "Don't let the experts in this thread scare you off.",
    "Welcome to the hobby, by the way!",
    "You'll pick up the fancy stuff later, once the basics click.",
]

OPENER_SENTENCES = [
    "Good question.", "I've been there.", "Great thread.", "+1 to what others said.",
    "I struggled with this too.", "Here's what worked for me.", "Short answer: it depends.",
    "Been doing this a while.", "Oh, I know this one.",
]
OPENER_PREFIXES = [
    "honestly, ", "in my experience, ", "personally, ", "IMO, ", "from what I've seen, ",
    "for what it's worth, ",
]
CLOSERS = [
    "Good luck!", "Hope that helps.", "You've got this.", "YMMV.", "Let us know how it goes.",
    "Have fun with it!", "Happy to answer follow-ups.", "Cheers.",
]
CONNECTORS = ["also, ", "on top of that, ", "another tip: ", "one more thing: ", "oh, and ", "separately, "]
CROSS_CONNECTORS = ["unrelated, but ", "on a side note, ", "also, and this matters more than people think, ", "slightly off topic, but "]
STEP_WORDS = ["first, ", "then ", "after that, ", "finally, "]

BODY_PLAIN = ["{a}", "I'd {a}", "you should {a}", "try to {a}", "my advice is to {a}",
              "definitely {a}", "I'd recommend you {a}", "make sure you {a}"]
BODY_REASON = ["{a}, because {r}", "{a} since {r}", "I'd {a}, because {r}", "you should {a}; {r}",
               "{a}. The reason is that {r}", "try to {a}, as {r}", "my advice is to {a}, because {r}"]
STEP_PLAIN = ["{a}"]
STEP_REASON = ["{a}, because {r}", "{a} since {r}", "{a}; {r}"]

# Chit-chat with no recommendation -> [not_advice].  (sentence, level or None)
CHITCHAT = [
    ("Thanks, this thread saved my afternoon.", None),
    ("Haha, I had the exact same problem last week.", None),
    ("Fun fact: Python is named after Monty Python, not the snake.", None),
    ("Great question, I've been wondering the same thing.", "beginner"),
    ("Following this thread, curious what others say.", None),
    ("My cat just walked across my keyboard while I was reading this.", None),
    ("That lasagna photo in the original post looks amazing.", None),
    ("I tried running a marathon once and my knees still remember it.", None),
    ("Lol, the compiler error in your screenshot is a classic.", "intermediate"),
    ("Tabs versus spaces is the only debate that matters, and I'm firmly team tabs.", "intermediate"),
    ("I'm also pretty new to all this, so I can't really help, sorry.", "beginner"),
    ("Been writing C compilers for twenty years and this thread still made me laugh.", "expert"),
    ("Honestly I just think pineapple on pizza is fine.", None),
    ("Thank you all, I ended up figuring it out.", None),
    ("This forum is the best corner of the internet.", None),
    ("Whoever wrote the top answer deserves a medal.", None),
    ("I remember when monads were the hot topic on this board.", "expert"),
    ("Same here, my sourdough starter died over the holidays too.", "intermediate"),
    ("Nice, congrats on finishing your first 5k!", "beginner"),
    ("Wow, I didn't know ovens could even get that hot.", "beginner"),
    ("Does anyone else read these threads at 3am?", None),
    ("My grandmother would be horrified by that recipe, but good for you.", None),
    ("Interesting discussion, though I have nothing to add.", None),
    ("The old version of this forum had a better dark mode.", None),
    ("Just here to say the gym near my place finally reopened.", None),
    ("The docs for that library are genuinely beautiful.", "intermediate"),
    ("Okay, the pun in the title got me.", None),
    ("We had a heated debate about garbage collector pause times at work last year.", "expert"),
    ("Bookmarking this for later.", None),
    ("Can't believe it's been ten years since I wrote my first line of code.", "intermediate"),
    ("Spicy food and I have a complicated relationship.", None),
    ("I'm not a doctor, just a guy who likes naps.", None),
    ("That's hilarious, thanks for sharing.", None),
    ("Is it just me or does every thread here turn into a debate about vim?", "intermediate"),
    ("The JIT discussion upthread went way over my head.", "beginner"),
    ("Kudos to the mods for keeping this place friendly.", None),
    ("The lock-free queue benchmark someone linked was a wild read.", "expert"),
    ("My gym buddy says the same thing every single week.", None),
    ("Ha, reading this while eating cold pizza at my desk.", None),
    ("I love how this board argues about cast iron like it's religion.", None),
    ("Still laughing at the segfault story from last week.", "intermediate"),
    ("First post here, hi everyone!", "beginner"),
]

ROW_TYPES = [("not_advice", 0.15), ("other", 0.05), ("begin_general", 0.03),
             ("single", 0.55), ("multi", 0.22)]


def cap(s):
    return s[0].upper() + s[1:] if s else s


def words(text):
    return len(text.split())


def weighted(rng, pairs):
    x = rng.random() * sum(w for _, w in pairs)
    for item, w in pairs:
        x -= w
        if x <= 0:
            return item
    return pairs[-1][0]


def pick_level_units(rng, topic, level):
    """Mostly the row's own level, sometimes an adjacent one (noisy audience)."""
    if rng.random() < 0.82:
        lv = level
    else:
        i = LEVELS.index(level)
        lv = LEVELS[max(0, min(2, i + rng.choice([-1, 1])))]
    return TOPIC_UNITS[topic][lv]


def render_unit(rng, action, reason, with_reason, prefix, step_word):
    if step_word is not None:
        body = rng.choice(STEP_REASON if with_reason else STEP_PLAIN)
        # "As a beginner, first cook ..." rather than "First, as a beginner, cook ..."
        lead = prefix + "first " if prefix and step_word == "first, " else step_word + prefix
    else:
        body = rng.choice(BODY_REASON if with_reason else BODY_PLAIN)
        lead = prefix
    return cap(lead + body.format(a=action, r=reason)) + "."


def helpfulness_score(rng, f):
    """Latent helpfulness from text features, plus small noise."""
    if f["not_advice"]:
        h = 0.3 + 0.25 * (f["n_sent"] - 1) + 0.01 * f["words"] + rng.gauss(0, 0.3)
        return round(min(1.8, max(0.0, h)), 1)
    h = (0.9 + 0.55 * f["n_units"] + 0.6 * f["n_reasons"] + 0.45 * f["steps"]
         + 0.3 * f["numbers"] + 0.9 * min(f["words"], 55) / 55
         + 0.1 * f["closer"] - 0.2 * f["other"])
    if f["n_units"] == 1 and f["n_reasons"] == 0 and f["words"] < 14:
        h -= 0.5  # curt one-liner
    h += rng.gauss(0, 0.3)
    return round(min(5.0, max(0.0, h)), 1)


def make_advice_row(rng, kind):
    tags = []
    beginner = False
    if kind == "other":
        level = weighted(rng, [("beginner", 0.3), ("intermediate", 0.45), ("expert", 0.25)])
    elif kind == "begin_general":
        beginner = True
        tags = [BEGIN]
        level = "beginner"
    else:
        beginner = rng.random() < 0.3
        if beginner:
            level = "beginner" if rng.random() < 0.9 else "intermediate"
        else:
            level = weighted(rng, [("beginner", 0.25), ("intermediate", 0.4), ("expert", 0.35)])

    # --- choose the advice units: list of (topic_tags, action, reason)
    units = []
    if kind == "other":
        for a, r in rng.sample(OTHER_UNITS, rng.choice([1, 1, 2])):
            units.append(([], a, r))
    elif kind == "begin_general":
        for a, r in rng.sample(BEGINNER_GENERAL_UNITS, rng.choice([1, 1, 2])):
            units.append(([], a, r))
    elif kind == "single":
        topic = rng.choice([PROG, COOK, HEALTH])
        n = weighted(rng, [(1, 0.4), (2, 0.4), (3, 0.2)])
        pool = pick_level_units(rng, topic, level)
        for a, r in rng.sample(pool, n):
            units.append(([topic], a, r))
    else:  # multi-topic
        if rng.random() < 0.5:
            cands = [b for b in BRIDGE_UNITS if b[1] == level] or BRIDGE_UNITS
            bt, _, a, r = rng.choice(cands)
            units.append((list(bt), a, r))
            if rng.random() < 0.6:
                t = rng.choice(bt)
                a2, r2 = rng.choice(pick_level_units(rng, t, level))
                units.append(([t], a2, r2))
        else:
            t1, t2 = rng.sample([PROG, COOK, HEALTH], 2)
            for t in (t1, t2):
                a, r = rng.choice(pick_level_units(rng, t, level))
                units.append(([t], a, r))
            rng.shuffle(units)
    topic_tags = []
    for ts, _, _ in units:
        for t in ts:
            if t not in topic_tags:
                topic_tags.append(t)
    if beginner:
        topic_tags.append(BEGIN)
    tags = [t for t in TAG_ORDER if t in topic_tags]

    # --- assemble sentences
    # step-by-step phrasing ("First, ... Then ...") only for single-topic lists
    steps = kind == "single" and len(units) >= 2 and rng.random() < 0.45
    reason_p = {"beginner": 0.5, "intermediate": 0.55, "expert": 0.6}[level]
    sents, n_reasons = [], 0
    beginner_mode = None
    if beginner:
        beginner_mode = weighted(rng, [("prefix", 0.55), ("sentence", 0.25), ("both", 0.2)])
    if kind == "begin_general":
        beginner_mode = "prefix" if rng.random() < 0.8 else "both"
    opener_prefix = ""
    opener_sentence = None
    if beginner_mode not in ("prefix", "both") and rng.random() < 0.25:
        opener_prefix = rng.choice(OPENER_PREFIXES)
    elif rng.random() < 0.2:
        opener_sentence = rng.choice(OPENER_SENTENCES)

    prev_tags = None
    used_connectors = []
    for i, (ts, a, r) in enumerate(units):
        with_reason = rng.random() < reason_p
        n_reasons += with_reason
        prefix = ""
        if i == 0:
            if beginner_mode in ("prefix", "both"):
                prefix = rng.choice(BEGINNER_PREFIXES)
            elif opener_prefix:
                prefix = opener_prefix
        step_word = None
        if steps:
            step_word = STEP_WORDS[i] if i < len(units) - 1 or i == 0 else (
                "finally, " if len(units) == 3 else rng.choice(["then ", "after that, "]))
        elif i > 0:
            cross = prev_tags is not None and ts and prev_tags and not set(ts) & set(prev_tags)
            pool = CROSS_CONNECTORS if cross and rng.random() < 0.6 else CONNECTORS
            prefix = rng.choice([c for c in pool if c not in used_connectors])
            used_connectors.append(prefix)
        sents.append(render_unit(rng, a, r, with_reason, prefix, step_word))
        prev_tags = ts
    if beginner_mode in ("sentence", "both"):
        bs = rng.choice(BEGINNER_SENTENCES)
        if rng.random() < 0.5:
            sents.insert(0, bs)
        else:
            sents.append(bs)
    if opener_sentence:
        sents.insert(0, opener_sentence)
    closer = rng.random() < 0.3
    if closer:
        sents.append(rng.choice(CLOSERS))

    text = " ".join(sents)
    n_sent = len(re.findall(r"[.!?](?:\s|$)", text))
    if n_sent > 4 or words(text) > MAX_WORDS:
        return None
    feats = {
        "not_advice": False, "n_units": len(units), "n_reasons": n_reasons,
        "steps": steps, "numbers": bool(re.search(r"\d", text)), "words": words(text),
        "closer": closer, "other": kind == "other", "n_sent": n_sent,
    }
    return {"text": text, "advice": tags, "audience": level,
            "helpfulness": helpfulness_score(rng, feats),
            "_sig": tuple(sorted(a for _, a, _ in units))}


def make_chitchat_row(rng):
    n = weighted(rng, [(1, 0.45), (2, 0.4), (3, 0.15)])
    picked = rng.sample(CHITCHAT, n)
    text = " ".join(s for s, _ in picked)
    lv = [l for _, l in picked if l]
    if lv:
        level = max(LEVELS, key=lambda L: (lv.count(L), -LEVELS.index(L)))
    else:
        level = weighted(rng, [("beginner", 0.35), ("intermediate", 0.45), ("expert", 0.2)])
    feats = {"not_advice": True, "words": words(text), "n_sent": n}
    return {"text": text, "advice": [NOT], "audience": level,
            "helpfulness": helpfulness_score(rng, feats),
            "_sig": tuple(sorted(s for s, _ in picked))}


def generate(rng):
    total = N_TRAIN + N_DEV + N_TEST - 1  # the seed row is added separately
    # "_sig" is the sorted list of advice fragments (or chit-chat sentences) a
    # text is built from; requiring unique signatures keeps rows from being
    # near-duplicates that differ only in template words ("I'd" vs "try to").
    seen_lookup = {SEED_ROW["text"]: True}
    rows = []
    # fixed counts per row type so proportions are exact, order is random
    kinds = []
    for kind, frac in ROW_TYPES:
        kinds += [kind] * round(frac * total)
    while len(kinds) < total:
        kinds.append("single")
    kinds = kinds[:total]
    rng.shuffle(kinds)
    for kind in kinds:
        for _ in range(1000):
            row = make_chitchat_row(rng) if kind == "not_advice" else make_advice_row(rng, kind)
            if (row is not None and row["text"] not in seen_lookup
                    and row["_sig"] not in seen_lookup):
                break
        else:
            raise RuntimeError(f"could not generate a unique {kind} row")
        seen_lookup[row.pop("_sig")] = True
        seen_lookup[row["text"]] = True
        rows.append(row)
    return rows


def blank_labels(rng, part, frac=0.15):
    """Set audience / helpfulness to None on exactly ``frac`` of a split's rows.

    The two columns are blanked independently, so a few rows miss both; every
    row keeps its ``advice`` list.
    """
    k = round(frac * len(part))
    for key in ("audience", "helpfulness"):
        for i in rng.sample(range(len(part)), k):
            part[i][key] = None


def main():
    rng = random.Random(SEED)
    rows = generate(rng)
    train = rows[: N_TRAIN - 1]
    dev = rows[N_TRAIN - 1: N_TRAIN - 1 + N_DEV]
    test = rows[N_TRAIN - 1 + N_DEV:]
    for part in (train, dev, test):
        blank_labels(rng, part)
    # the seed example keeps all of its labels
    train.insert(rng.randrange(len(train) + 1), dict(SEED_ROW))
    here = os.path.dirname(os.path.abspath(__file__))
    for name, part in (("train", train), ("dev", dev), ("test", test)):
        path = os.path.join(here, name + ".jsonl")
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in part)
        print(f"wrote {len(part)} rows to {path}")


if __name__ == "__main__":
    main()
