"""The embedded grammar: size, determinism, and a recognizer that agrees with the generator and
rejects what English rejects."""
from __future__ import annotations

import pytest

from odepipe_plugins.text.grammar import Grammar, default_grammar


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return default_grammar()


def test_vocabulary_has_at_least_500_words(grammar):
    assert len(grammar.words) >= 500


def test_generation_is_deterministic_by_seed(grammar):
    assert grammar.corpus(50, seed=3) == grammar.corpus(50, seed=3)
    assert grammar.corpus(50, seed=3) != grammar.corpus(50, seed=4)


def test_recognizer_accepts_everything_the_generator_makes(grammar):
    sentences = grammar.corpus(400, seed=1)
    assert all(grammar.accepts(s) for s in sentences)


@pytest.mark.parametrize("sentence", [
    "the old man walked to the river",                    # intransitive + PP, past
    "a young girl sang in the garden",
    "the dogs chase a cat",                               # transitive, present plural
    "the dog chases the cats",                            # present singular agreement
    "the farmer will not sell the horses",                # future, negation
    "the teachers did not walk",                          # past negation
    "she does not like them",                             # pronouns and case
    "the children were singing loudly",                   # progressive + adverb
    "the man who saw the dog walked to the river",        # subject relative clause
    "the book that the girl found is old",                # object relative clause, copular
    "they will not be beside a baby",                     # negated copula with a PP
    "there is one slow fox",                              # existential without a PP
    "the man and the woman walked",                       # NP coordination -> plural
    "the boy laughed and the girl cried",                 # clause coordination
    "there are two dogs in the garden",                   # existential agreement
    "did the old man walk to the river ?",                # yes/no question
    "what did the girl find ?",                           # wh-question
    "who sings ?",
    "an old man walked",                                  # a/an
])
def test_recognizer_accepts_constructions(grammar, sentence):
    assert grammar.accepts(sentence)


@pytest.mark.parametrize("sentence", [
    "the old man walk to the river",       # agreement (present, singular subject)
    "the dogs chases a cat",               # agreement (plural subject)
    "the man and the woman walks",         # coordinated subject is plural
    "a old man walked",                    # a/an
    "there is two dogs in the garden",     # existential agreement
    "these dog walked",                    # determiner number
    "the man walked the",                  # incomplete
    "walked the man",                      # word order
    "she likes they",                      # object case
    "the man did not walked",              # do-support wants the base form
    "the old man walked to the zebra",     # word outside the lexicon
    "",
])
def test_recognizer_rejects_ungrammatical(grammar, sentence):
    assert not grammar.accepts(sentence)


def test_corpus_covers_questions_negation_and_clauses(grammar):
    text = grammar.corpus(2000, seed=0)
    assert any(s.endswith("?") for s in text)
    assert any(" not " in s for s in text)
    assert any(" who " in s or " that " in s for s in text)
    assert any(s.startswith("there ") for s in text)
    assert max(len(s.split()) for s in text) <= 20
