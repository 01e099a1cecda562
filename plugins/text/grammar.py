"""A probabilistic English grammar: the embedded corpus generator and its recognizer.

Why: the text models need a corpus that ships with the code (nothing may need a network) and a
way to *judge* what a model writes. One set of weighted context-free rules serves both: the
generator expands them at random (deterministic by seed), and an Earley recognizer decides
whether any sentence belongs to the same language. Features (number sg/pl, tense past/pres/fut,
transitivity, subject/object case) are compiled into plain nonterminal names, so agreement is
enforced by the rules themselves. The one rule outside the context-free part is a/an, checked
on adjacent words (``a`` before a consonant-initial word, ``an`` before a vowel-initial one).

Constructions: declaratives (intransitive, transitive, copular, existential ``there is/are``),
progressive aspect, yes/no and wh-questions, negation (``did not``, ``does not``, ``is not``,
``will not``), adjectives, prepositional phrases, subject and object relative clauses,
coordination of clauses, verb phrases and noun phrases (which makes the subject plural), past /
present / future tense, and singular/plural agreement of determiners, verbs and pronouns.
"""

from __future__ import annotations

import itertools
import random
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

# -- the lexicon ---------------------------------------------------------------------------------
_IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "fisherman": "fishermen",
    "thief": "thieves",
    "wolf": "wolves",
    "mouse": "mice",
    "knife": "knives",
    "leaf": "leaves",
}
NOUN_LEMMAS = """
man woman child boy girl king queen teacher doctor farmer student soldier sailor artist baker
driver nurse pilot singer writer painter hunter fisherman prince princess lawyer judge cook guard
thief friend neighbor stranger traveler musician dancer poet scientist engineer merchant priest
knight giant wizard witch baby lady actor captain clerk miner shepherd tailor waiter officer uncle
aunt
dog cat horse bird fox wolf mouse rabbit bear lion tiger duck goat cow pig frog owl eagle elephant
ant insect monkey snake whale donkey parrot spider turtle
book letter song apple orange box ball cup key ring coin hat coat shoe bag map lamp chair table
bottle basket flower stone rope sword story picture boat car bicycle clock bell candle cake egg
umbrella gift drum guitar kite pencil window door blanket knife leaf envelope anchor ax
river garden house city forest village park school market church castle bridge mountain lake
field road street hill island valley station library kitchen shop farm beach harbor tower cave
palace office museum hospital airport desert
""".split()

# (base, 3sg, past, -ing); None means the regular form
_VERB_FORMS: Dict[str, Tuple[Optional[str], Optional[str], Optional[str]]] = {
    "run": (None, "ran", "running"),
    "sing": (None, "sang", None),
    "swim": (None, "swam", "swimming"),
    "sit": (None, "sat", "sitting"),
    "stand": (None, "stood", None),
    "fall": (None, "fell", None),
    "fly": ("flies", "flew", None),
    "hide": (None, "hid", None),
    "sleep": (None, "slept", None),
    "see": (None, "saw", "seeing"),
    "find": (None, "found", None),
    "take": (None, "took", None),
    "hold": (None, "held", None),
    "meet": (None, "met", None),
    "buy": (None, "bought", None),
    "sell": (None, "sold", None),
    "bring": (None, "brought", None),
    "read": (None, "read", None),
    "write": (None, "wrote", None),
    "draw": (None, "drew", None),
    "catch": (None, "caught", None),
    "throw": (None, "threw", None),
    "eat": (None, "ate", None),
    "drink": (None, "drank", None),
    "hear": (None, "heard", None),
    "teach": (None, "taught", None),
    "leave": (None, "left", None),
    "lose": (None, "lost", None),
    "forget": (None, "forgot", "forgetting"),
    "hit": (None, "hit", "hitting"),
    "break": (None, "broke", None),
    "know": (None, "knew", None),
    "build": (None, "built", None),
    "feed": (None, "fed", None),
    "keep": (None, "kept", None),
    "dig": (None, "dug", "digging"),
    "cut": (None, "cut", "cutting"),
    "sweep": (None, "swept", None),
    "stop": (None, "stopped", "stopping"),
    "hug": (None, "hugged", "hugging"),
    "shop": (None, "shopped", "shopping"),
    "wake": (None, "woke", None),
    "win": (None, "won", "winning"),
    "grab": (None, "grabbed", "grabbing"),
    "drive": (None, "drove", None),
    "ride": (None, "rode", None),
    "sink": (None, "sank", None),
    "shine": (None, "shone", None),
    "dream": (None, "dreamed", None),
}
INTRANSITIVE = """walk sing run sleep dance laugh cry smile swim jump wait fall arrive travel rest
work play shout listen sit stand climb wander hide fly stop shop wake dream shine sink
rise""".split()
TRANSITIVE = """see like find take hold carry watch help love hate follow visit know meet call push
pull open close paint build buy sell bring read write draw catch throw kick wash clean eat drink
want need hear teach leave lose miss remember forget chase feed greet kiss hug thank touch hit
break fix fill move keep dig cut sweep grab win drive ride answer""".split()
_VERB_FORMS["rise"] = (None, "rose", None)

ADJECTIVES = """old young big small tall short happy sad angry quiet loud brave clever kind cruel
gentle proud lazy busy tired hungry rich poor strange famous beautiful ugly dark bright cold warm
hot wet dry clean dirty heavy soft hard little large red blue green yellow white black brown gray
golden silver wooden ancient modern empty full broken new quick slow wild friendly lonely calm
curious careful noble silly shy strong weak funny lucky pretty sleepy elegant odd icy eager idle
orange""".split()
ADVERBS = """quickly slowly quietly loudly happily sadly carefully suddenly often again today
gently bravely proudly angrily softly calmly easily badly twice alone together""".split()
PREPOSITIONS = """in on near under behind beside with to from across through over into toward
around along without inside outside above below beyond""".split()
NAMES = """john mary anna peter david sarah tom emma james lucy paul kate mark alice jack laura
sam nina oscar ella max rose leo ivy""".split()
DET_SG = ["the", "a", "this", "that", "every", "one"]
DET_PL = ["the", "these", "those", "some", "many", "two", "three", "four", "several", "few"]
VOWELS = set("aeiou")


def plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def verb_forms(base: str) -> Tuple[str, str, str, str]:
    """(base, third person singular, past, -ing) of a verb."""
    s, past, ing = _VERB_FORMS.get(base, (None, None, None))
    if s is None:
        if base.endswith(("s", "sh", "ch", "x", "z", "o")):
            s = base + "es"
        elif base.endswith("y") and base[-2] not in VOWELS:
            s = base[:-1] + "ies"
        else:
            s = base + "s"
    if past is None:
        if base.endswith("e"):
            past = base + "d"
        elif base.endswith("y") and base[-2] not in VOWELS:
            past = base[:-1] + "ied"
        else:
            past = base + "ed"
    if ing is None:
        ing = base[:-1] + "ing" if base.endswith("e") and not base.endswith("ee") else base + "ing"
    return base, s, past, ing


def lexicon() -> Dict[str, List[str]]:
    """Lexical category -> words. Category names start with an uppercase letter."""
    cats: Dict[str, List[str]] = {
        "N_sg": list(NOUN_LEMMAS),
        "N_pl": [plural(n) for n in NOUN_LEMMAS],
        "Name": list(NAMES),
        "Adj": list(ADJECTIVES),
        "Adv": list(ADVERBS),
        "P": list(PREPOSITIONS),
        "Det_sg": DET_SG + ["an"],
        "Det_pl": list(DET_PL),
        "ProSubj_sg": ["he", "she", "it"],
        "ProSubj_pl": ["they"],
        "ProObj": ["him", "her", "it", "them"],
        "Conj": ["and", "but"],
        "Rel": ["who", "that"],
    }
    for kind, lemmas in (("i", INTRANSITIVE), ("t", TRANSITIVE)):
        forms = [verb_forms(v) for v in lemmas]
        cats[f"V{kind}_base"] = [f[0] for f in forms]
        cats[f"V{kind}_s"] = [f[1] for f in forms]
        cats[f"V{kind}_past"] = [f[2] for f in forms]
        cats[f"V{kind}_ing"] = [f[3] for f in forms]
    return cats


# -- the rules -----------------------------------------------------------------------------------
Rule = Tuple[str, Tuple[str, ...], float]
NUMS = ("sg", "pl")
TENSES = ("past", "pres", "fut")


def rules() -> List[Rule]:
    """Every weighted production ``(lhs, rhs, weight)``. Symbols that start with an uppercase
    letter are nonterminals or lexical categories; everything else is a literal word."""
    out: List[Rule] = []

    def add(lhs: str, rhs: str, weight: float = 1.0) -> None:
        out.append((lhs, tuple(rhs.split()), weight))

    add("S", "Decl", 0.8)
    add("S", "Ques ?", 0.2)
    add("Decl", "Clause", 0.9)
    add("Decl", "Clause Conj Clause", 0.1)
    for n in NUMS:
        be = {
            "past": "was" if n == "sg" else "were",
            "pres": "is" if n == "sg" else "are",
            "fut": "will be",
        }
        add("Clause", f"Subj_{n} Pred_{n}", 0.95)
        add("Clause", f"there {be['past']} NPs_{n} PP", 0.025)
        add("Clause", f"there {be['pres']} NPs_{n} PP", 0.025)
        add("Clause", f"there {be['past']} NPs_{n}", 0.005)
        add("Clause", f"there {be['pres']} NPs_{n}", 0.005)
        # subjects: a noun phrase, a pronoun, a name; coordinated subjects are plural
        add(f"Subj_{n}", f"NP_{n}", 0.8)
        add(f"Subj_{n}", f"ProSubj_{n}", 0.1)
        if n == "sg":
            add("Subj_sg", "Name", 0.1)
        else:
            add("Subj_pl", "NPs_any and NPs_any", 0.1)
        # noun phrases: simple ones, or with one PP or relative clause attached
        add(f"NP_{n}", f"NPs_{n}", 0.78)
        add(f"NP_{n}", f"NPs_{n} PP", 0.12)
        add(f"NP_{n}", f"NPs_{n} RC_{n}", 0.1)
        add(f"NPs_{n}", f"Det_{n} Nom_{n}", 0.9 if n == "sg" else 1.0)
        if n == "sg":
            add("NPs_sg", "Name", 0.1)
        add("NPs_any", f"NPs_{n}", 1.0)
        add(f"Nom_{n}", f"N_{n}", 0.6)
        add(f"Nom_{n}", f"Adj N_{n}", 0.32)
        add(f"Nom_{n}", f"Adj Adj N_{n}", 0.08)
        for rel in ("who", "that"):  # subject relatives agree with the head noun
            add(f"RC_{n}", f"{rel} RVP_{n}", 0.35)
        for m in NUMS:  # object relatives: the verb agrees with the relative clause's subject
            add(f"RC_{n}", f"that NPs_{m} RVt_{m}", 0.15)
        for t in TENSES:
            add(f"Pred_{n}", f"VP_{n}_{t}", 0.93 / 3)
            add(f"Pred_{n}", f"VP_{n}_{t} and VP_{n}_{t}", 0.07 / 3)
            # relative clauses use simple verb forms only, which keeps them short
            add(f"RVP_{n}", f"SVGi_{n}_{t}", 0.5 / 3)
            add(f"RVP_{n}", f"SVGt_{n}_{t} ObjS", 0.5 / 3)
            add(f"RVt_{n}", f"SVGt_{n}_{t}", 1 / 3)
            # verb phrases: intransitive, transitive, copular; optional PP and adverb
            for core, w in ((f"VGi_{n}_{t}", 0.4), (f"VGt_{n}_{t} Obj", 0.45)):
                add(f"VP_{n}_{t}", core, w * 0.45)
                add(f"VP_{n}_{t}", f"{core} PP", w * 0.35)
                add(f"VP_{n}_{t}", f"{core} Adv", w * 0.15)
                add(f"VP_{n}_{t}", f"{core} PP Adv", w * 0.05)
            add(f"VP_{n}_{t}", f"{be[t]} Adj", 0.08)
            add(f"VP_{n}_{t}", "will not be Adj" if t == "fut" else f"{be[t]} not Adj", 0.02)
            add(f"VP_{n}_{t}", f"{be[t]} PP", 0.05)
            add(f"VP_{n}_{t}", "will not be PP" if t == "fut" else f"{be[t]} not PP", 0.01)
            # finite verb groups: simple, negated, progressive
            for k in ("i", "t"):
                simple = {
                    "past": f"V{k}_past",
                    "pres": f"V{k}_{'s' if n == 'sg' else 'base'}",
                    "fut": f"will V{k}_base",
                }[t]
                add(f"SVG{k}_{n}_{t}", simple, 1.0)
                g = f"VG{k}_{n}_{t}"
                if t == "past":
                    add(g, f"V{k}_past", 0.75)
                    add(g, f"did not V{k}_base", 0.12)
                elif t == "pres":
                    add(g, f"V{k}_{'s' if n == 'sg' else 'base'}", 0.75)
                    add(g, f"{'does' if n == 'sg' else 'do'} not V{k}_base", 0.12)
                else:
                    add(g, f"will V{k}_base", 0.75)
                    add(g, f"will not V{k}_base", 0.12)
                if t != "fut":
                    add(g, f"{be[t]} V{k}_ing", 0.1)
                    add(g, f"{be[t]} not V{k}_ing", 0.03)
                else:
                    add(g, f"will be V{k}_ing", 0.1)
                    add(g, f"will not be V{k}_ing", 0.03)
    add("Obj", "NP_sg", 0.45)
    add("Obj", "NP_pl", 0.45)
    add("Obj", "ProObj", 0.1)
    add("ObjS", "NPs_sg", 0.45)
    add("ObjS", "NPs_pl", 0.45)
    add("ObjS", "ProObj", 0.1)
    add("PP", "P NPs_sg", 0.6)
    add("PP", "P NPs_pl", 0.4)
    # questions: their subjects are simple noun phrases, pronouns or names
    for n in NUMS:
        add(f"QSubj_{n}", f"NPs_{n}", 0.85)
        add(f"QSubj_{n}", f"ProSubj_{n}", 0.15)
    for n in NUMS:
        do = "does" if n == "sg" else "do"
        be_pres, be_past = ("is", "was") if n == "sg" else ("are", "were")
        add("Ques", f"did QSubj_{n} BVP", 0.2)
        add("Ques", f"{do} QSubj_{n} BVP", 0.1)
        add("Ques", f"will QSubj_{n} BVP", 0.07)
        add("Ques", f"{be_pres} QSubj_{n} Adj", 0.03)
        add("Ques", f"{be_past} QSubj_{n} Vi_ing", 0.03)
        add("Ques", f"what did QSubj_{n} Vt_base", 0.04)
        add("Ques", f"what {do} QSubj_{n} Vt_base", 0.02)
        add("Ques", f"where did QSubj_{n} Vi_base", 0.03)
        add("Ques", f"where {do} QSubj_{n} Vi_base", 0.02)
    for t in TENSES:
        add("Ques", f"who VP_sg_{t}", 0.05)
    add("BVP", "Vi_base", 0.35)
    add("BVP", "Vi_base PP", 0.2)
    add("BVP", "Vt_base Obj", 0.35)
    add("BVP", "Vt_base Obj PP", 0.1)
    return out


# -- the grammar object --------------------------------------------------------------------------
class Grammar:
    """The rules, a seeded generator and an Earley recognizer of the same language.

    >>> g = Grammar()
    >>> g.accepts("the old man walked to the river")
    True
    >>> g.accepts("the old man walk to the river")
    False
    """

    def __init__(self) -> None:
        self.lexicon = lexicon()
        self.rules = rules()
        self.by_lhs: Dict[str, List[Tuple[Tuple[str, ...], float]]] = {}
        for lhs, rhs, w in self.rules:
            self.by_lhs.setdefault(lhs, []).append((rhs, w))
        # for sampling: the right-hand sides and their cumulative weights, per nonterminal
        self._options = {
            lhs: ([o[0] for o in opts], list(itertools.accumulate(o[1] for o in opts)))
            for lhs, opts in self.by_lhs.items()
        }
        self.categories_of: Dict[str, Set[str]] = {}
        for cat, words in self.lexicon.items():
            for word in words:
                self.categories_of.setdefault(word, set()).add(cat)
        for _lhs, rhs, _ in self.rules:  # literal words in rules are part of the vocabulary
            for sym in rhs:
                if not sym[0].isupper():
                    self.categories_of.setdefault(sym, set())
        self._check()

    def _check(self) -> None:
        for lhs, rhs, _ in self.rules:
            for sym in rhs:
                if sym[0].isupper() and sym not in self.by_lhs and sym not in self.lexicon:
                    raise ValueError(f"grammar rule {lhs} -> {' '.join(rhs)} uses undefined {sym}")

    @property
    def words(self) -> FrozenSet[str]:
        """Every word the grammar can produce."""
        return frozenset(self.categories_of)

    # -- generation ------------------------------------------------------------------------------
    def generate(self, rng: random.Random, max_words: int = 20) -> str:
        """One sentence drawn from the weighted rules (redrawn while longer than max_words)."""
        while True:
            words: List[str] = []
            self._expand("S", rng, words)
            if len(words) <= max_words:
                return " ".join(fix_articles(words))

    def _expand(self, symbol: str, rng: random.Random, out: List[str]) -> None:
        if symbol in self.lexicon:
            out.append(rng.choice(self.lexicon[symbol]))
        elif symbol in self.by_lhs:
            options, cumulative = self._options[symbol]
            rhs = rng.choices(options, cum_weights=cumulative)[0]
            for sym in rhs:
                self._expand(sym, rng, out)
        else:
            out.append(symbol)

    def corpus(self, n: int, seed: int = 0, max_words: int = 20) -> List[str]:
        """``n`` sentences, the same for the same seed on every machine."""
        rng = random.Random(seed)
        return [self.generate(rng, max_words) for _ in range(n)]

    # -- recognition -----------------------------------------------------------------------------
    def accepts(self, sentence: str) -> bool:
        """Whether ``sentence`` (words separated by spaces, ``?`` may be attached) belongs to the
        grammar's language, a/an rule included."""
        words = split_words(sentence)
        if not words or any(w not in self.categories_of for w in words):
            return False
        return articles_ok(words) and self._earley(words)

    def _earley(self, words: Sequence[str]) -> bool:
        """Earley recognition; states are (lhs, rhs, dot, origin). No rule has an empty rhs."""
        n = len(words)
        chart: List[Set[Tuple[str, Tuple[str, ...], int, int]]] = [set() for _ in range(n + 1)]
        chart[0] = {("$", ("S",), 0, 0)}
        for i in range(n + 1):
            agenda = list(chart[i])
            while agenda:
                lhs, rhs, dot, origin = agenda.pop()
                if dot < len(rhs):
                    sym = rhs[dot]
                    if sym in self.by_lhs:  # predict
                        for prod, _ in self.by_lhs[sym]:
                            state = (sym, prod, 0, i)
                            if state not in chart[i]:
                                chart[i].add(state)
                                agenda.append(state)
                        # complete against items already finished here (no empty rules, so
                        # only possible when origin == i, which cannot finish at i): nothing
                    elif i < n and (sym == words[i] or sym in self.categories_of[words[i]]):
                        chart[i + 1].add((lhs, rhs, dot + 1, origin))  # scan
                else:  # complete
                    for plhs, prhs, pdot, porigin in list(chart[origin]):
                        if pdot < len(prhs) and prhs[pdot] == lhs:
                            state = (plhs, prhs, pdot + 1, porigin)
                            if state not in chart[i]:
                                chart[i].add(state)
                                agenda.append(state)
        return ("$", ("S",), 1, 0) in chart[n]


def split_words(sentence: str) -> List[str]:
    return sentence.replace("?", " ?").lower().split()


def fix_articles(words: List[str]) -> List[str]:
    """a -> an before a vowel-initial word, an -> a before a consonant-initial one."""
    out = list(words)
    for i in range(len(out) - 1):
        if out[i] in ("a", "an"):
            out[i] = "an" if out[i + 1][0] in VOWELS else "a"
    return out


def articles_ok(words: Sequence[str]) -> bool:
    return list(words) == fix_articles(list(words))


_DEFAULT: Optional[Grammar] = None


def default_grammar() -> Grammar:
    """The process-wide grammar (building it is cheap, but the recognizer is reused)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Grammar()
    return _DEFAULT


def accepts(sentence: str) -> bool:
    """Whether the embedded grammar accepts ``sentence``."""
    return default_grammar().accepts(sentence)
