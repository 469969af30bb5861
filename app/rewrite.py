"""Follow-up questions made standalone: "and when can it be renewed?" after "when does the
agreement expire?" becomes "When can the agreement be renewed?".

With a model the model rewrites (prompt in app/prompts.py); without one, or when its reply is
unusable, `rewrite_rules` does: it strips leading "and/also/so", replaces pronouns with the noun
phrase they stand for in the previous standalone question, and completes fragments ("what about
the other party?", "and for cause?") from that question.
"""

import re

from app.prompts import rewrite_prompt

_FILLER = re.compile(r"^(?:and|also|so|but|then|ok(?:ay)?|well|now|right)\b[,\s]*", re.I)
_ABOUT = re.compile(r"^(?:what|how)\s+about\s+(.+)$", re.I)
_ASKS = re.compile(
    r"^(?:what|what's|when|who|whom|whose|which|where|why|how|is|are|was|were|do|does|did|can|could|may|"
    r"might|must|shall|should|will|would|has|have|had|list|describe|explain|summari[sz]e|tell|give|show)\b",
    re.I,
)
_DETERMINER = r"(?:the|this|that|a|an|any|its|their|such)"
_STOP = {
    "is", "are", "was", "were", "be", "been", "do", "does", "did", "can", "could", "may", "might", "must",
    "shall", "should", "will", "would", "has", "have", "had", "of", "on", "for", "to", "in", "by", "with",
    "from", "at", "under", "upon", "after", "before", "when", "if", "and", "or", "the", "this", "that",
    "a", "an", "it", "its", "they", "their", "who", "what", "which", "how", "about", "between",
}
# Verbs that end a noun phrase in the questions people ask of contracts ("the contract contain").
_VERBS = set("""include includes contain contains transfer transfers provide provides grant grants require
    requires pay pays extend extends apply applies allow allows permit permits cover covers limit limits
    expire expires renew renews terminate terminates become becomes say says state states mean means
    need needs get gets give gives take takes make makes use uses owe owes survive survives start starts
    begin begins end ends last lasts exceed exceeds granted provided required given made paid signed
    executed""".split())
_PREPOSITIONS = ("for", "on", "under", "in", "to", "by", "with", "from", "after", "before", "during", "against")
_DOCUMENT = re.compile(
    r"\b(?:this|the|that)\s+(?:(?!(?:of|the|this|that|a|an|for|on|to|in|by)\b)[\w-]+\s+){0,4}?(?:agreement|contract|nda|lease|licen[cs]e agreement|amendment|"
    r"manual|guide|document|policy)\b",
    re.I,
)
# Things a contract itself does: a pronoun subject of these verbs is the document.
_DOCUMENT_VERBS = re.compile(
    r"\b(?:effective|expire|expires|expiry|expiration|renew|renewed|renewal|renewing|terminate|terminated|"
    r"termination|signed|executed|dated|governed|begin|start|end|last|assigned|amended|in force)\b",
    re.I,
)
# Counterparts for "the other party"; the first match in the previous question is swapped.
ROLE_PAIRS = (
    ("customer", "provider"), ("customer", "supplier"), ("customer", "vendor"), ("client", "contractor"),
    ("licensor", "licensee"), ("buyer", "seller"), ("purchaser", "seller"), ("franchisor", "franchisee"),
    ("landlord", "tenant"), ("lessor", "lessee"), ("disclosing party", "receiving party"),
    ("employer", "employee"), ("lender", "borrower"), ("company", "consultant"), ("distributor", "supplier"),
)


def rewrite_rules(question: str, previous: str | None, roles: tuple[str, ...] = ()) -> str:
    """`question` made standalone given the previous standalone question; `roles` are the party
    names the documents in scope define (e.g. "Customer", "Provider"), used for "the other party"."""
    q = _tidy(question)
    if not previous:
        return q
    body = _FILLER.sub("", q.rstrip("?").strip()) or q.rstrip("?")
    about = _ABOUT.match(body)
    if about or not _ASKS.match(body):
        return _tidy(_complete(about.group(1) if about else body, _tidy(previous), roles))
    return _tidy(_resolve_pronouns(body, _tidy(previous)))


def rewrite_with_model(llm, history: list[tuple[str, str]], question: str) -> str | None:
    """The model's standalone form of `question`, or None when its reply is not a usable question."""
    reply = llm.invoke(rewrite_prompt(history, question))
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:rewritten question|question)\s*:\s*", "", line, flags=re.I).strip(" \"'“”")
    if not line or len(line) > 4 * len(question) + 200:
        return None
    return _tidy(line)


def _complete(fragment: str, previous: str, roles: tuple[str, ...]) -> str:
    """A fragment ("the other party", "for cause", "the NDA") completed from the previous question."""
    fragment = fragment.strip()
    if re.fullmatch(r"(?:the\s+)?other\s+(?:party|side)", fragment, re.I):
        swapped = _swap_party(previous, roles)
        return swapped if swapped else f"{previous.rstrip('?')}, for the other party"
    first = fragment.split()[0].lower()
    if first in _PREPOSITIONS:
        phrases = list(re.finditer(rf"\b{first}\s+[^?,;]+?(?=\s+(?:{'|'.join(_PREPOSITIONS)})\s|\?|$)", previous, re.I))
        if phrases:
            return previous[:phrases[-1].start()] + fragment + previous[phrases[-1].end():]
        return f"{previous.rstrip('?')} {fragment}"
    role = _role_in(fragment, roles)
    if role and _role_in(previous, roles):
        return re.sub(rf"\b(?:the\s+)?{re.escape(_role_in(previous, roles))}\b", fragment, previous, count=1, flags=re.I)
    if _DOCUMENT.fullmatch(fragment) or re.fullmatch(r"(?:the\s+)?[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*", fragment):
        if _DOCUMENT.search(previous):
            return _DOCUMENT.sub(fragment, previous, count=1)
        return f"{previous.rstrip('?')} in {fragment}"
    tail = re.search(rf"\b(?:{'|'.join(_PREPOSITIONS)}|of|about)\s+((?:[\w'-]+\s*){{1,4}})\?$", previous, re.I)
    if tail and not _DOCUMENT.fullmatch(tail.group(1).strip()):
        return previous[:tail.start(1)] + fragment + "?"
    subject = _document_phrase(previous)
    return f"What does {subject} say about {fragment}" if subject else f"What do the documents say about {fragment}"


def _resolve_pronouns(body: str, previous: str) -> str:
    """Replace it/its/they/them/their and a pronoun this/that by what they stand for."""
    document = _document_phrase(previous)
    topic = _topic(previous)
    if _DOCUMENT_VERBS.search(body) and document:
        it = document
    else:
        it = topic or document
    if not it:
        return body
    body = re.sub(r"\bits\b", f"{it}'s", body, flags=re.I)
    body = re.sub(r"\bit\b", it, body, flags=re.I)
    body = re.sub(r"^((?:is|was|does|did|can|will|would|should|must)\s+)(?:this|that)\b(?!\s+(?:clause|section|term|"
                  r"agreement|contract|provision|obligation|right|period|fee|amount|date)\b)",
                  lambda m: m.group(1) + (topic or it), body, flags=re.I)
    body = re.sub(r"\b(?:this|that)\b(?=\s*(?:$|\?|[,.]|\s(?:is|was|be|apply|applies|mean|means|include|includes|"
                  r"cover|covers|require|requires|happen|happens|work|cost)\b))", topic or it, body, flags=re.I)
    parties = "the parties"
    body = re.sub(r"\b(?:they|them)\b", parties if _mentions_parties(previous) else (topic or it), body, flags=re.I)
    return re.sub(r"\btheir\b", "the parties'" if _mentions_parties(previous) else f"{topic or it}'s", body, flags=re.I)


def _document_phrase(question: str) -> str:
    match = _DOCUMENT.search(question)
    return match.group(0) if match else ""


def _topic(question: str) -> str:
    """The first noun phrase of a question that is not the document itself or a party ("the
    notice period", "the cap on liability"); "a/an/any" become "the" since it is now known."""
    words = re.findall(r"[\w'-]+", question)
    for i, word in enumerate(words):
        if word.lower() not in ("the", "this", "that", "a", "an", "any", "its", "their", "such"):
            continue
        phrase = [word]
        for following in words[i + 1:i + 5]:
            if following.lower() in _STOP or following.lower() in _VERBS:
                break
            phrase.append(following)
        rest = words[i + len(phrase):]
        if len(rest) >= 2 and rest[0].lower() in ("on", "of", "for") and rest[1].lower() not in _STOP:
            phrase += rest[:2]
        if len(phrase) == 1 or _DOCUMENT.match(" ".join(phrase)) or _is_role(phrase[-1]):
            continue
        if phrase[0].lower() in ("a", "an", "any", "such"):
            phrase[0] = "the"
        return " ".join(phrase)
    return ""


def _is_role(word: str) -> bool:
    return any(word.lower() in pair for pair in ROLE_PAIRS) or word.lower() in ("party", "parties")


def _role_in(text: str, roles: tuple[str, ...]) -> str:
    names = roles or tuple(name for pair in ROLE_PAIRS for name in pair)
    found = [(m.start(), name) for name in names for m in [re.search(rf"\b{re.escape(name)}\b", text, re.I)] if m]
    return min(found)[1] if found else ""


def _swap_party(previous: str, roles: tuple[str, ...]) -> str:
    mine = _role_in(previous, roles)
    if not mine:
        return ""
    others = [b if a.lower() == mine.lower() else a for a, b in ROLE_PAIRS if mine.lower() in (a.lower(), b.lower())]
    present = [r for r in roles if r.lower() in {o.lower() for o in others}]
    other = (present or others or [""])[0]
    if not other:
        return ""
    match = re.search(rf"\b{re.escape(mine)}\b", previous, re.I)
    replacement = other if mine[0].isupper() or other[0].isupper() else other.lower()
    if previous[match.start()].isupper() and not replacement[0].isupper():
        replacement = replacement.capitalize()
    return previous[:match.start()] + replacement + previous[match.end():]


def _mentions_parties(question: str) -> bool:
    return bool(re.search(r"\bparties\b|\beach party\b|\bboth\b", question, re.I))


def _tidy(question: str) -> str:
    text = " ".join(question.split()).strip()
    text = text.rstrip("?.! ").strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + "?"
