"""The offline extractor: generated text -> the main character's emotion words, with the built-in lexicon.

`LexiconExtractor` ("lexicon" backend) stands in for the published LLM extraction (shared/spec/mer-unibench.md,
"Extraction") without a model: deterministic, no download, no torch, tens of thousands of texts per second.
Its rules were read off the released LLM answers (`-openset` files, 6 datasets x 7 epochs, 31,472
descriptions) and are measured by benchmarks/bench_extraction.py.

Labels. The text is normalised (lower case; curly apostrophes and quotes, non-breaking hyphens made plain;
en/em dashes become commas), cut into word and punctuation tokens, and every surface form of the built-in
lexicon is looked up, longest first (multi-word forms such as `at ease`, `under pressure`, `not interested`
win over their parts). A word is returned as written (`anxiety`, `frustrated`): the official protocol maps
words by exact surface form and the LLM copies the description's words, so a lemma would only lose
information. Then:

- negation drops a word: `not`, `no`, `never`, `without`, `nor`, `neither`, `n't`, `lack of`, `free of`,
  `rather than`, `instead of`... up to NEGATION_WINDOW words before it in the same clause (`not angry`,
  `no sign of fear`, `without anxiety`, `does not seem sad`, `neither angry nor sad`); a comma, `;`, `.`,
  `but`, `though`... ends the clause; `not only` / `not just` do not negate. A negated phrase that the
  lexicon lists as an emotion of its own is that emotion (`not happy`, `not sure`, `lack of interest`);
- hedges are kept (`may be`, `possibly`, `seems`, `a hint of`), as the LLM keeps them;
- a word the lexicon does not know is no emotion and is dropped (`important`, `evaluation`, `request`: the
  LLM dropped 73% of the 1,209 such list items). The lexicon's stance words (`serious`, `focused`) are kept,
  as the LLM kept them (`serious`: 96% of 629 items);
- in running text a form is skipped where it describes a thing or a body part (before NON_PERSON_NOUNS:
  `emotional state`, `serious issue`, `open mouth`), where it is a verb with an object (before
  OBJECT_STARTS: `supports the inference`, `moving his hands`) and in the fixed non-feeling phrases of
  NON_EMOTION_BEFORE / NON_EMOTION_AFTER (`feels like a`, `engaged in`, `the subtitle content`). Who feels
  the word is not checked: a description of another person's anger gives `anger` too;
- a text whose only emotion word is `neutral` gives `[]` (the LLM answered `[]` for 887 of the 888
  descriptions "The character's emotional state is neutral.");
- per sentence, the first HEAD_WORDS = 4 words are kept and a later one only if it is a strong emotion,
  |valence| >= TAIL_MIN_INTENSITY = 0.7 (`sad`, `angry`, `fear`, `happy`; not `confused`, `serious`).
  The LLM does the same on long lists: of the 5,502 descriptions listing 5 or more words it returned 4 in
  56%; words 1-4 were kept 90% of the time, later words 50%: 79% for |valence| >= 0.7, 46% below. Keeping
  all words overestimates the LLM's HIT by about 1 point, keeping 4 underestimates it by about 0.5.

Text it cannot read. The lexicon is English: a text mostly in another script (Chinese, for example: the
`chinese` column of the EMER and transcript files) or a text of MIN_LANGUAGE_WORDS words or more in which
neither a lexicon form nor one of ENGLISH_MARKERS occurs (another language in Latin script) gives `[]`, marked
"unreadable" with the reason, never passed off as "no emotion". A text is "not in Latin script" when fewer
than MIN_LATIN_SHARE of its letters are Latin. The job counts these per file (extract/job.py).

Sentiment: the valence vote of `affectgpt.extract.sentiment` over the words of each `-openset` answer; an
answer whose words are not in Latin script is marked "unreadable" the same way.

Why no lemmatiser (simplemma and lemminflect are offline PyPI packages): the lexicon already lists the
inflections and derivations of every lemma as surface forms (3,550 forms, suggested by lemminflect once and
checked by hand, docs/builtin-protocol.md); lookup must return the surface form anyway; and a lemmatiser
adds a dependency and a slower path for nothing on the released outputs, where every item the LLM kept is
either a listed form or no emotion. A missing form is added to the TSV, which also fixes the built-in
scoring protocol.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from affectgpt.extract.base import LabelResult, OnLabel, OnSentiment, SentimentResult
from affectgpt.extract.sentiment import valence_vote
from affectgpt.formats.label_lists import parse_label_list
from affectgpt.lexicon.builtin import Lexicon, builtin_lexicon

HEAD_WORDS = 4
TAIL_MIN_INTENSITY = 0.7
NEGATION_WINDOW = 4  # words looked back for a negator, within the clause
CACHE_SIZE = 65536  # distinct texts remembered (the same answers recur across samples and epochs)
MIN_LATIN_SHARE = 0.5  # a text with fewer Latin letters than this share of its letters is another script
MIN_LANGUAGE_WORDS = 10  # a text this long with no lexicon form and no English marker is another language
# Frequent English words that are not words of the other languages in Latin script likely here (French, Spanish,
# German, Italian, Portuguese; "is", "was", "he" are Dutch, German, Spanish too, a cost accepted): "in", "on", "me",
# "so", "do", "no", "a" are left out. A contraction ("don't", "it's", "we're") marks English too. On the 51,501
# English texts of ../shared/reference (transcripts, EMER, released outputs) fewer than 10 short ones are
# taken for another language.
ENGLISH_MARKERS = frozenset({
    "the", "and", "with", "of", "that", "this", "his", "her", "she", "they", "their", "are", "were", "been", "be",
    "it", "to", "for", "not", "you", "your", "i", "my", "we", "our", "what", "how", "why", "where", "who", "would",
    "should", "could", "will", "have", "had", "did", "does", "can", "just", "know", "think", "want", "get", "got",
    "yeah", "okay", "oh", "well", "there", "here", "at", "from", "by", "about", "going", "really", "like",
    "feels", "seems", "very", "is", "was", "he", "but", "some", "only", "which", "when", "after", "maybe", "much",
})
_CONTRACTIONS = ("n't", "'s", "'re", "'ll", "'ve", "'m", "'d")
UNREADABLE_SCRIPT = "not in Latin script"
UNREADABLE_LANGUAGE = "no English word"

_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'", "\u201c": '"',
                        "\u201d": '"', "\u201e": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-",
                        "\u2013": ",", "\u2014": ",", "\u00a0": " "})
# A word (letters/digits, with inner hyphens, underscores or apostrophes) or one punctuation character.
_TOKEN = re.compile(r"[a-z0-9]+(?:[-_'][a-z0-9]+)*|[^\sa-z0-9]")
_LETTER = re.compile(r"[^\W\d_]")
_NON_LATIN_LETTER = re.compile(r"[^\W\d_a-zA-Z\u00c0-\u024f\u1e00-\u1eff]")

NEGATORS = frozenset({"not", "no", "never", "without", "nor", "neither", "hardly", "barely", "cannot",
                      "lack", "lacks", "lacking", "lacked", "absence", "absent", "devoid"})
NEGATOR_PAIRS = frozenset({("free", "of"), ("free", "from"), ("rather", "than"), ("instead", "of"),
                           ("far", "from")})
SENTENCE_ENDS = frozenset({".", "!", "?", ";"})
NOT_NEGATING_NEXT = frozenset({"only", "just", "merely", "simply"})  # "not only angry but also sad"
CLAUSE_BREAKS = frozenset({".", ",", ";", ":", "!", "?", "(", ")", "[", "]", '"', "but", "although", "though",
                           "yet", "however", "whereas", "while", "whilst"})
# A form right before one of these nouns describes a thing or a body part, not the character's feeling
# ("emotional state", "serious issue", "tense topic", "open mouth", "focused eyes"); "angry look",
# "happy mood" and "positive attitude" stay.
NON_PERSON_NOUNS = frozenset({
    "state", "states", "issue", "issues", "topic", "topics", "matter", "matters", "problem", "problems",
    "question", "questions", "situation", "situations", "subject", "subjects", "news", "event", "events",
    "information", "content", "scene", "scenes", "setting", "music", "atmosphere", "environment", "moment",
    "moments", "conversation", "conversations", "discussion", "discussions", "change", "changes", "shift",
    "shifts", "fluctuation", "fluctuations", "cues", "clues", "analysis", "words", "sentence", "sentences",
    "story", "stories", "nature", "impact", "thing", "things", "aspect", "aspects", "factor", "factors",
    "outcome", "outcomes", "result", "results", "mouth", "eyes", "eye", "eyebrows", "brows", "brow", "lips",
    "gaze", "medical", "device",
})
# A form followed by an object is a verb about something else ("supports the inference", "moving his hands",
# "reflects her attitude"), not a state; "angry that ..." stays.
OBJECT_STARTS = frozenset({"the", "a", "an", "his", "her", "their", "its", "my", "your", "our", "him", "them",
                           "these", "those"})
# (form, next word) and (previous word, form) pairs that are not a feeling: "feels like a", "engaged in",
# "the subtitle content", "a certain question", "to recognize", "wide open".
NON_EMOTION_BEFORE = frozenset({
    ("like", "a"), ("like", "an"), ("like", "the"), ("like", "he"), ("like", "she"), ("like", "they"),
    ("like", "it"), ("like", "this"), ("like", "that"), ("down", "at"), ("down", "to"), ("engaged", "in"),
    ("content", "of"), ("certain", "degree"), ("certain", "extent"), ("certain", "amount"),
})
NON_EMOTION_AFTER = frozenset({
    ("subtitle", "content"), ("subtitles", "content"), ("text", "content"), ("the", "content"),
    ("this", "content"), ("its", "content"), ("a", "certain"), ("to", "recognize"), ("to", "recognise"),
    ("wide", "open"), ("slightly", "open"), ("a", "question"), ("the", "question"), ("this", "question"),
    ("that", "question"),
})


@dataclass(frozen=True)
class _Forms:
    """The lexicon's surface forms, indexed for a longest-first walk over tokens."""

    forms: frozenset[str]
    prefixes: frozenset[str]  # every proper token prefix of a multi-word form ("in", "in a", "in a good")

    @classmethod
    def of(cls, lexicon: Lexicon) -> _Forms:
        prefixes = set()
        for form in lexicon.forms:
            parts = form.split(" ")
            prefixes.update(" ".join(parts[:k]) for k in range(1, len(parts)))
        return cls(frozenset(lexicon.forms), frozenset(prefixes))


def normalise(text: str) -> str:
    """Lower case, plain apostrophes, quotes and hyphens; en/em dashes become commas (list separators)."""
    return text.translate(_PLAIN).lower()


def tokenise(text: str) -> list[str]:
    """Word and punctuation tokens of a normalised text."""
    return _TOKEN.findall(text)


class LexiconExtractor:
    """Offline, deterministic extraction with the built-in affect lexicon (see the module docstring).

    Args:
        lexicon: the word knowledge (default: the package's built-in lexicon).
        head_words: the first this many words of a text are always kept (None: keep every word).
        tail_min_intensity: a later word is kept only if its |valence| is at least this.
    """

    name = "lexicon"

    def __init__(self, lexicon: Lexicon | None = None, head_words: int | None = HEAD_WORDS,
                 tail_min_intensity: float = TAIL_MIN_INTENSITY) -> None:
        self.lexicon = lexicon or builtin_lexicon()
        self.head_words = head_words
        self.tail_min_intensity = tail_min_intensity
        self._forms = _Forms.of(self.lexicon)
        self._read = functools.lru_cache(maxsize=CACHE_SIZE)(self._read_text)
        self._vote = functools.lru_cache(maxsize=CACHE_SIZE)(self._vote_answer)

    def describe(self) -> dict[str, object]:
        """What produced the answers: recorded beside every output file."""
        return {"backend": self.name, "lexicon_forms": len(self.lexicon.forms), "head_words": self.head_words,
                "tail_min_intensity": self.tail_min_intensity}

    def labels(self, texts: Sequence[str], on_result: OnLabel | None = None) -> list[LabelResult]:
        """The emotion words of each text, as `[w1, w2]` answers (`[]` when none); a text the lexicon cannot
        read is marked "unreadable" with the reason (see the module docstring)."""
        results = []
        for i, text in enumerate(texts):
            words, unreadable = self._read(text if isinstance(text, str) else "")
            answer = "[" + ", ".join(words) + "]"
            result = LabelResult(words, answer) if unreadable is None \
                else LabelResult(words, answer, "unreadable", unreadable)
            if on_result is not None:
                on_result(i, result)
            results.append(result)
        return results

    def sentiment(self, openset_answers: Sequence[str],
                  on_result: OnSentiment | None = None) -> list[SentimentResult]:
        """positive / negative / neutral for each `-openset` answer, by the valence vote; an answer whose words
        are not in Latin script is marked "unreadable" (its vote is kept)."""
        results = []
        for i, answer in enumerate(openset_answers):
            label, unreadable = self._vote(answer if isinstance(answer, str) else "")
            result = SentimentResult(label, label) if unreadable is None \
                else SentimentResult(label, label, "unreadable", unreadable)
            if on_result is not None:
                on_result(i, result)
            results.append(result)
        return results

    def words(self, text: str) -> tuple[str, ...]:
        """The emotion words of one text (cached)."""
        return self._read(text)[0]

    def _vote_answer(self, answer: str) -> tuple[str, str | None]:
        return valence_vote(parse_label_list(answer), self.lexicon), _other_script(answer)

    def _read_text(self, text: str) -> tuple[tuple[str, ...], str | None]:
        """The emotion words of one text, and why the text cannot be read (None when it can)."""
        tokens = tokenise(normalise(text))
        matches = self._matches(tokens)
        unreadable = _other_script(text)
        if unreadable is None and not matches:
            unreadable = _other_language(tokens)
        return self._find_words(tokens, matches), unreadable

    def _find_words(self, tokens: list[str], matches: list[tuple[str, int, int]]) -> tuple[str, ...]:
        for _, start, end in matches:  # a form's own tokens ("lack of interest") negate nothing after it
            tokens[start:end] = [""] * (end - start)
        sentence_of = list(itertools.accumulate((t in SENTENCE_ENDS for t in tokens), initial=0))
        kept: dict[str, None] = {}
        sentence, in_sentence = -1, 0
        for word, start, _ in matches:
            if _negated(tokens, start) or word in kept:
                continue
            here = sentence_of[start]
            if here != sentence:
                sentence, in_sentence = here, 0
            in_sentence += 1
            if self.head_words is None or in_sentence <= self.head_words or self._intense(word):
                kept[word] = None
        words = tuple(kept)
        if words and all(self.lexicon.forms[w] == "neutral" for w in words):
            return ()  # "his emotional state is neutral": no identifiable emotion, as the LLM answers
        return words

    def _intense(self, word: str) -> bool:
        return abs(self.lexicon.valence(word) or 0.0) >= self.tail_min_intensity

    def _matches(self, tokens: list[str]) -> list[tuple[str, int, int]]:
        """(form as written, first token, end token) of every lexicon form, longest match first, left to right."""
        forms, prefixes = self._forms.forms, self._forms.prefixes
        found = []
        i, n = 0, len(tokens)
        while i < n:
            best, size = None, 0
            candidate, end = tokens[i], i + 1
            while True:
                if candidate in forms:
                    best, size = candidate, end - i
                if candidate not in prefixes or end == n:
                    break
                candidate, end = f"{candidate} {tokens[end]}", end + 1
            if best is not None and not _non_emotion_use(tokens, i, size):
                found.append((best, i, i + size))
                i += size
            else:
                i += 1
        return found


def _other_script(text: str) -> str | None:
    """Why `text` is not in Latin script (fewer than MIN_LATIN_SHARE of its letters are Latin), else None."""
    if text.isascii():
        return None
    letters = len(_LETTER.findall(text))
    if not letters:
        return None
    latin = letters - len(_NON_LATIN_LETTER.findall(text))
    if latin >= MIN_LATIN_SHARE * letters:
        return None
    return f"{UNREADABLE_SCRIPT}: {latin} of its {letters} letters are Latin"


def _other_language(tokens: list[str]) -> str | None:
    """Why a Latin-script text with no lexicon form reads as another language, else None."""
    words = [t for t in tokens if "a" <= t[0] <= "z"]
    if len(words) < MIN_LANGUAGE_WORDS or not ENGLISH_MARKERS.isdisjoint(words) \
            or any(w.endswith(_CONTRACTIONS) for w in words):
        return None
    return f"{UNREADABLE_LANGUAGE}: none of its {len(words)} words is an emotion word or a common English word"


def _non_emotion_use(tokens: list[str], start: int, size: int) -> bool:
    """A form used about a thing (`serious issue`) or in a fixed non-emotion phrase (`feels like a`)."""
    after = tokens[start + size] if start + size < len(tokens) else ""
    if after in NON_PERSON_NOUNS:
        return True
    if size > 1:  # "looks forward to the trip" is a feeling
        return False
    if after in OBJECT_STARTS:
        return True
    before = tokens[start - 1] if start else ""
    return (tokens[start], after) in NON_EMOTION_BEFORE or (before, tokens[start]) in NON_EMOTION_AFTER


def _negated(tokens: list[str], start: int) -> bool:
    """A negator within NEGATION_WINDOW words before `start`, in the same clause."""
    for j in range(start - 1, max(start - 1 - NEGATION_WINDOW, -1), -1):
        token = tokens[j]
        if token in CLAUSE_BREAKS:
            return False
        after = tokens[j + 1]
        if token in NEGATORS or token.endswith("n't"):
            if after not in NOT_NEGATING_NEXT:
                return True
        elif (token, after) in NEGATOR_PAIRS:
            return True
    return False
