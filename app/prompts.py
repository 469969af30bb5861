"""Every prompt and fixed phrase the Q&A and summaries use, in one place.

PROMPT_VERSION changes whenever any text here changes what a model is asked; caches of model
states that include a prompt (the document state cache) and benchmark outputs key on it.
"""

import json

PROMPT_VERSION = "qa-2"

NOT_COVERED = "The documents do not cover this."
NOT_FOUND = "Not found in the document."
UNSUPPORTED = "(no quote from the document supports this)"  # after a model's summary field without one

EXTRACTIVE_LABEL = "extractive: sentences quoted from the documents, no model"
ENABLE_GENERATION = (
    "For generated answers, pass --model DIR, set TOME_MODEL, or put a Granite 4.0 H folder "
    "(e.g. ibm-granite/granite-4.0-h-1b) under models/."
)

# The documents block of the Granite 4.0 chat template (its `documents=` argument), written into
# the system turn so that any LangChain chat model sees the same layout the Granite models were
# trained on: one JSON object per retrieved passage inside <documents></documents>.
DOCUMENTS_INTRO = (
    "You are a helpful assistant with access to the following documents. You may use one or more "
    "documents to assist with the user query.\n\n"
    "You are given a list of documents within <documents></documents> XML tags:\n<documents>"
)
DOCUMENTS_OUTRO = (
    "\n</documents>\n\nWrite the response to the user's input by strictly aligning with the facts in "
    "the provided documents. If the information needed to answer the question is not available in "
    "the documents, inform the user that the question cannot be answered based on the available data."
)

ANSWER_RULES = (
    "You answer questions about contracts and technical manuals.\n"
    "- Use only the documents. End every sentence that states a fact with the number of the "
    "document it comes from in square brackets, e.g. [2]; several are allowed, e.g. [1][3].\n"
    "- When exact wording matters (amounts, dates, notice periods, obligations), quote it "
    "verbatim in double quotes, copied character for character from the document.\n"
    "- For a yes/no question, begin with Yes or No.\n"
    f"- If the documents do not answer the question, reply exactly: {NOT_COVERED}\n"
    "- Be brief: at most five sentences."
)

# Whole-document mode: the system turn holds these rules and the document's full text, so every
# question about the document continues from one cached state. There are no passage numbers to
# cite: the model quotes, and each quote is located in the text to find its page.
WHOLE_RULES = (
    "You answer questions about the contract or technical manual given below in full.\n"
    "- Use only this document. Support every statement with a short quote copied character for "
    "character from the document, in double quotes.\n"
    "- For a yes/no question, begin with Yes or No.\n"
    f"- If the document does not answer the question, reply exactly: {NOT_COVERED}\n"
    "- Be brief: at most five sentences."
)

# A summary field asked of the whole document (or of one part of it, for the hierarchical method).
FIELD_REQUEST = (
    "For a summary of this document, answer briefly: {question} Quote the deciding words verbatim "
    f"in double quotes. If the document does not say, reply exactly: {NOT_FOUND}"
)
# The title of one part of a document too long to read at once (the hierarchical summary).
PART_TITLE = "{title}, part {part} of {parts}"
COMBINE_REQUEST = (
    "These notes answer \"{question}\" for consecutive parts of one document, with verbatim quotes. "
    "Combine them into one brief answer for the whole document; keep the quotes exactly as they are. "
    f"If no part answers it, reply exactly: {NOT_FOUND}\n\n{{notes}}"
)

REWRITE_INSTRUCTIONS = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and elliptical phrases with what they refer to, keep every detail, do not "
    "answer it. Reply with the rewritten question only, on one line."
)


def documents_block(documents: list[dict]) -> str:
    """The Granite documents block for passages given as {"doc_id", "title", "text", "source"}."""
    lines = "".join("\n" + json.dumps(doc, ensure_ascii=False) for doc in documents)
    return DOCUMENTS_INTRO + lines + DOCUMENTS_OUTRO


def answer_system_prompt(documents: list[dict]) -> str:
    return ANSWER_RULES + "\n\n" + documents_block(documents)


def whole_system_prompt(title: str, text: str) -> str:
    """The system turn of whole-document mode: the rules, then the document as Granite document 1."""
    return WHOLE_RULES + "\n\n" + documents_block([{"doc_id": "1", "title": title, "text": text}])


def rewrite_prompt(history: list[tuple[str, str]], question: str) -> str:
    """The user turn asking a model to make `question` standalone, given (role, text) turns."""
    turns = "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in history)
    return f"{REWRITE_INSTRUCTIONS}\n\nConversation:\n{turns}\n\nLast question: {question}\n\nRewritten question:"


# Contract summary fields, each filled by retrieval: (name, the question asked of the document,
# extra search queries that find the clause in the wording contracts use).
CONTRACT_FIELDS = (
    ("Parties", "Who are the parties to this agreement?",
     ("This Agreement is entered into by and between", "by and between the parties")),
    ("Effective date and term", "When does the agreement take effect and how long does its term last?",
     ("effective date of this agreement", "the term of this agreement shall commence and continue")),
    ("Renewal", "Does the agreement renew automatically, and how can renewal be stopped?",
     ("automatically renew for successive renewal terms unless notice of non-renewal",)),
    ("Payment", "What fees are payable and what are the payment terms?",
     ("invoices payable within days fees", "payment terms late payment interest")),
    ("Termination rights", "When may a party terminate the agreement?",
     ("may terminate this agreement for convenience upon written notice",
      "terminate for material breach not cured")),
    ("Liability caps and indemnities", "What is the cap on liability and which indemnities apply?",
     ("aggregate liability shall not exceed", "shall indemnify defend and hold harmless")),
    ("Confidentiality", "What confidentiality obligations apply?",
     ("shall keep confidential information of the disclosing party",)),
    ("Governing law and disputes", "Which law governs the agreement and how are disputes resolved?",
     ("governed by and construed in accordance with the laws of", "arbitration courts jurisdiction venue disputes")),
)

# Obligations worth a reader's attention, listed under "Unusual obligations" only when the
# document clearly contains them (the same strength of support an answer needs).
NOTABLE_CLAUSES = (
    ("Non-compete", "shall not compete engage in any business competitive with"),
    ("Exclusivity", "exclusive supplier distributor shall purchase exclusively"),
    ("Non-solicitation", "shall not solicit or hire employees or customers"),
    ("Most favoured nation", "prices no less favorable than those offered to any other customer"),
    ("Minimum commitment", "minimum purchase quantity annual minimum commitment"),
    ("Right of first refusal", "right of first refusal offer negotiation"),
    ("Change of control", "change of control merger acquisition consent to assignment"),
    ("Liquidated damages", "liquidated damages termination fee"),
    ("Audit rights", "right to audit books and records"),
    ("Source code escrow", "source code escrow agent release"),
    ("IP assignment", "intellectual property shall be owned by and assigned to"),
    ("Insurance", "shall maintain insurance coverage"),
    ("Non-disparagement", "shall not disparage"),
    ("Covenant not to sue", "shall not challenge or contest the validity"),
)

MANUAL_FIELDS = (
    ("Purpose", "What does this manual describe?",
     ("this manual describes intended use scope", "about this manual purpose")),
    ("Key procedures", "What are the main installation, operation and maintenance procedures?",
     ("procedure steps installation start-up commissioning", "maintenance schedule inspection")),
    ("Safety warnings", "What are the safety warnings?",
     ("WARNING hazard risk of electric shock death injury", "CAUTION damage to equipment")),
)

# The fields a model writes when it reads the whole document: (name, question).
MODEL_CONTRACT_FIELDS = tuple((name, question) for name, question, _ in CONTRACT_FIELDS) + (
    ("Unusual obligations", "Which unusual obligations does it impose, such as non-compete, exclusivity, "
     "minimum commitments, most-favoured-nation pricing or audit rights?"),
)
MODEL_MANUAL_FIELDS = (
    ("Purpose", "What does this manual describe, and for whom?"),
    ("Structure", "How is the manual organised? Name its main sections in order."),
    ("Key procedures", "What are the main installation, operation and maintenance procedures?"),
    ("Safety warnings", "What are the safety warnings?"),
)
