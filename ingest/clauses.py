"""The clause types a contract reader asks about, and how contracts word them.

A question about a kind of clause shares few words with the clause itself: "Is there a
non-compete?" against "shall not directly or indirectly engage in any business that competes".
Search recognises such a question (its vector close to one of a type's question forms) and
searches with the type's model wording as well: its words join the keyword query and its vector
is added to the question's. Title, parties and date are stated in a contract's opening lines,
so for those the opening chunk of each document joins the candidates.

The model wordings are generic clauses written for Tome; they only have to share vocabulary and
meaning with the clauses real contracts use. The vectors of the question forms and wordings are
kept in a file in the store's folder, so a one-off `tome search` does not embed them each time.
"""

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A question is taken to ask about a clause type when its cosine similarity to one of the type's
# question forms reaches MATCH_FROM, and the wording then counts for more the closer the match:
# its weight rises linearly from 0 there to 1 at MATCH_FULL. Questions about a particular
# document's own terms ("What is the Data Breach Cap?") mostly stay below; so do statements about
# one detail of a clause ("Receiving Party may retain some Confidential Information..."), which
# its generic wording would only blur.
MATCH_FROM, MATCH_FULL = 0.62, 0.70
# The dense query: the question's vector plus this much of the wording's (times the match's
# weight), renormalised. The wording's words join the keyword query at the match's weight.
WORDING_WEIGHT = 0.5


@dataclass(frozen=True)
class ClauseType:
    name: str
    questions: tuple[str, ...]  # how people ask about it (the name counts as one more)
    wording: str  # how a contract typically words it
    opening: bool = False  # stated in the opening lines of a contract


CLAUSE_TYPES = (
    ClauseType("Title", ("What is the name or title of this agreement?", "What kind of contract is this?",
                         "What type of agreement is this?"),
               'THIS AGREEMENT (the "Agreement") is made and entered into as of the date below. AGREEMENT', opening=True),
    ClauseType("Parties", ("Who are the parties to this agreement?", "Who signed the contract?"),
               "This Agreement is entered into by and between Company, a corporation, and Supplier, a limited "
               'liability company (each a "Party" and together the "Parties").', opening=True),
    ClauseType("Date", ("When was the agreement signed, dated or entered into?", "What is the date of this contract?"),
               "This Agreement is made and entered into as of January 1, 2020, by and between the parties.",
               opening=True),
    ClauseType("Effective date", ("When does the agreement become effective?", "What is the effective date?"),
               "This Agreement shall become effective on the Effective Date and the term shall commence on the "
               "date first written above.", opening=True),
    ClauseType("Term", ("How long is the initial term?", "When does the agreement expire?"),
               "The initial term of this Agreement shall commence on the Effective Date and continue for a period "
               "of three (3) years, unless terminated earlier, and shall expire thereafter."),
    ClauseType("Renewal", ("Does the agreement renew automatically?", "What is the renewal term?"),
               "This Agreement shall automatically renew for successive one (1) year renewal terms unless either "
               "party gives written notice of non-renewal."),
    ClauseType("Non-renewal notice", ("How much notice is needed to stop renewal?",
                                      "What is the notice period to terminate renewal?"),
               "unless either party notifies the other in writing of its intention not to renew at least ninety "
               "(90) days prior to the expiration of the then-current term."),
    ClauseType("Governing law", ("Which law governs the agreement?", "What is the governing law?"),
               "This Agreement shall be governed by and construed in accordance with the laws of the State of "
               "New York, without regard to its conflict of laws principles."),
    ClauseType("Dispute resolution", ("How are disputes resolved?",
                                      "Is there an arbitration clause? Which courts have jurisdiction?"),
               "Any dispute arising out of or relating to this Agreement shall be finally settled by binding "
               "arbitration; the parties submit to the exclusive jurisdiction and venue of the courts."),
    ClauseType("Most favoured nation", ("Is there a most favored nation clause?",
                                        "Does the buyer get better terms if a third party gets them?"),
               "Most favored customer. If Supplier offers any other customer more favorable prices or terms for "
               "comparable products, Supplier shall offer such more favorable prices and terms to Customer."),
    ClauseType("Non-compete", ("Is there a non-compete?", "Is a party restricted from competing?"),
               "During the term and for two years thereafter, neither party shall directly or indirectly engage "
               "in, own or operate any business that competes with the business of the other party in the "
               "Territory."),
    ClauseType("Exclusivity", ("Is there an exclusivity clause?", "Is the relationship exclusive?",
                               "Is there an exclusive dealing or requirements commitment?",
                               "Is a party prohibited from selling to or working with others?"),
               "Distributor shall be the exclusive distributor of the Products in the Territory, and Company "
               "shall not appoint any other distributor or sell the Products to third parties; Customer shall "
               "purchase all of its requirements exclusively from Supplier."),
    ClauseType("Non-solicitation of customers", ("Is a party restricted from soliciting customers?",
                                                 "Is there a non-solicit of customers?"),
               "Neither party shall solicit, induce or attempt to divert any customer, client or supplier of the "
               "other party, or interfere with its business relationships."),
    ClauseType("Non-solicitation of employees", ("Is there a restriction on hiring or soliciting employees?",
                                                 "Is there a no-poach clause?",
                                                 "May a party solicit or hire the other party's employees or contractors?"),
               "Neither party shall, directly or indirectly, solicit for employment or hire any employee or "
               "contractor of the other party without its prior written consent."),
    ClauseType("Non-disparagement", ("Is there a non-disparagement clause?", "Must a party not disparage the other?"),
               "Neither party shall make any statement that disparages, defames or is derogatory of the other "
               "party or its products, officers or reputation."),
    ClauseType("Termination for convenience", ("Can a party terminate without cause?",
                                               "Is there termination for convenience?"),
               "Either party may terminate this Agreement for convenience at any time, for any reason or no "
               "reason, without cause, upon thirty (30) days' prior written notice to the other party."),
    ClauseType("Termination for breach", ("When can the agreement be terminated for breach?",
                                          "What are the termination rights for cause?"),
               "Either party may terminate this Agreement upon written notice if the other party materially "
               "breaches this Agreement and fails to cure such breach within thirty (30) days, or becomes "
               "insolvent or bankrupt."),
    ClauseType("Right of first refusal", ("Is there a right of first refusal, first offer or first negotiation?",),
               "Before selling or licensing the product or rights to any third party, Company shall first offer "
               "them to Partner, who shall have a right of first refusal to match the offer and a right of first "
               "negotiation."),
    ClauseType("Change of control", ("What happens on a change of control?",
                                     "Can a party terminate if the other is acquired or merges?"),
               "In the event of a change of control of a party, including a merger, acquisition, sale of all or "
               "substantially all of its assets or transfer of a majority of its voting stock, the other party "
               "may terminate this Agreement upon notice."),
    ClauseType("Assignment", ("Can the agreement be assigned?", "Is consent required to assign the contract?"),
               "Neither party may assign or transfer this Agreement or any of its rights or obligations "
               "hereunder without the prior written consent of the other party; any attempted assignment "
               "without consent shall be void."),
    ClauseType("Revenue sharing", ("Is revenue or profit shared?", "Are royalties payable?"),
               "Licensee shall pay Licensor a royalty of ten percent (10%) of Net Sales, and the parties shall "
               "share the net profits and revenues equally."),
    ClauseType("Price restrictions", ("Can prices be raised?", "Are prices fixed or restricted?"),
               "Prices shall remain fixed during the term and Supplier shall not increase the prices except upon "
               "ninety days' notice and no more than once per year."),
    ClauseType("Minimum commitment", ("Is there a minimum purchase commitment?", "What is the minimum order quantity?"),
               "Customer shall purchase a minimum quantity of Products in each calendar year, and if the minimum "
               "purchase commitment is not met Customer shall pay the shortfall."),
    ClauseType("Volume restriction", ("What happens if usage exceeds a threshold?",
                                      "Are there usage caps or overage fees?"),
               "If usage exceeds the licensed number of users or the volume limit, Customer shall pay additional "
               "fees for the excess and obtain consent before exceeding it."),
    ClauseType("IP ownership", ("Who owns the intellectual property created?", "Is intellectual property assigned?",
                                "Who owns work product and inventions created under the agreement?"),
               "All intellectual property, inventions, work product and deliverables created under this "
               "Agreement shall be the sole and exclusive property of Company, and Contractor hereby assigns to "
               "Company all right, title and interest therein."),
    ClauseType("Joint IP", ("Is intellectual property jointly owned?", "Is there shared ownership of IP?"),
               "Any inventions conceived jointly by the parties shall be jointly owned by both parties, each "
               "having an undivided interest in the joint intellectual property."),
    ClauseType("License grant", ("Is a license granted?", "What license does the agreement grant?"),
               "Licensor hereby grants to Licensee a non-exclusive, non-transferable license to use, reproduce "
               "and distribute the Licensed Technology and trademarks in the Territory."),
    ClauseType("License transfer", ("Can the license be transferred or sublicensed?",
                                    "Is the license non-transferable?"),
               "The license is personal, non-transferable and non-sublicensable, and Licensee shall not assign, "
               "sublicense or otherwise transfer the license to any third party."),
    ClauseType("Affiliate licensing", ("Does the license extend to affiliates?",
                                       "Are affiliates licensors or licensees?"),
               "Licensor, on behalf of itself and its Affiliates, grants to Licensee and its Affiliates a license "
               "under the intellectual property owned or controlled by Licensor and its Affiliates."),
    ClauseType("Unlimited license", ("Is there an unlimited or enterprise-wide license?", "Is usage unlimited?"),
               "Licensee may use the Software for an unlimited number of users, copies and sites throughout the "
               "enterprise, on an all-you-can-eat basis."),
    ClauseType("Perpetual license", ("Is the license perpetual or irrevocable?",),
               "Licensor grants a perpetual, irrevocable, fully paid-up, royalty-free license that shall survive "
               "any termination of this Agreement."),
    ClauseType("Source code escrow", ("Is source code held in escrow?", "Is there a source code escrow?"),
               "Licensor shall deposit the source code of the Software with an escrow agent, to be released to "
               "Licensee if Licensor becomes bankrupt, insolvent or ceases to support the Software."),
    ClauseType("Post-termination obligations", ("What obligations continue after termination?",
                                                "What happens when the agreement ends?"),
               "Upon termination or expiration, each party shall return or destroy the other's confidential "
               "information, pay all amounts accrued, provide transition assistance and sell off remaining "
               "inventory; these obligations survive termination."),
    ClauseType("Audit rights", ("Can a party audit the other's books and records?", "Are there audit rights?"),
               "Each party shall keep complete and accurate books and records, and the other party may inspect "
               "and audit such books, records and facilities upon reasonable notice during normal business hours."),
    ClauseType("Uncapped liability", ("Is liability unlimited for some breaches?",
                                      "Are there exclusions from the liability cap?"),
               "The limitations of liability shall not apply to a party's indemnification obligations, breach "
               "of confidentiality, infringement of intellectual property, gross negligence or willful misconduct."),
    ClauseType("Liability cap", ("Is liability capped?", "What is the limitation of liability?"),
               "In no event shall either party's aggregate liability exceed the fees paid in the twelve months "
               "preceding the claim, and neither party shall be liable for indirect, incidental or consequential "
               "damages; no action may be brought more than one year after it arises."),
    ClauseType("Liquidated damages", ("Are there liquidated damages or a termination fee?",),
               "As liquidated damages and not as a penalty, the breaching party shall pay a termination fee equal "
               "to the amounts stated, which the parties agree is a reasonable estimate of the damages."),
    ClauseType("Warranty", ("How long is the warranty?", "What warranties are given?"),
               "Supplier warrants that the Products shall be free from defects in materials and workmanship and "
               "conform to the specifications for a period of twelve (12) months from delivery."),
    ClauseType("Insurance", ("What insurance must a party maintain?", "Is insurance required?"),
               "Supplier shall maintain, at its own expense, commercial general liability insurance and product "
               "liability insurance with coverage of at least $1,000,000 per occurrence, naming Company as an "
               "additional insured."),
    ClauseType("Covenant not to sue", ("Is a party barred from challenging the other's IP?",
                                       "Is there a covenant not to sue?",
                                       "Is a party prohibited from contesting the validity of the other party's "
                                       "intellectual property?"),
               "Licensee shall not contest or challenge the validity or ownership of the Licensed Patents or "
               "trademarks, and covenants not to sue Licensor or bring any claim with respect thereto."),
    ClauseType("Third-party beneficiary", ("Are there third-party beneficiaries?",
                                           "Can someone other than the parties enforce the agreement?"),
               "Nothing in this Agreement confers any rights or remedies on any person other than the parties; "
               "there are no third party beneficiaries, except that the Indemnified Parties are intended third "
               "party beneficiaries."),
    ClauseType("Confidentiality", ("What are the confidentiality obligations?",
                                   "How must confidential information be protected?"),
               "The receiving party shall hold the disclosing party's Confidential Information in strict "
               "confidence, use it only for the purposes of this Agreement and not disclose it to any third party."),
    ClauseType("Indemnification", ("Who indemnifies whom?", "What are the indemnification obligations?"),
               "Each party shall indemnify, defend and hold harmless the other party from and against any and all "
               "claims, losses, damages, liabilities and expenses, including reasonable attorneys' fees, arising "
               "from third-party claims."),
    ClauseType("Payment terms", ("What are the payment terms?", "When are invoices due?"),
               "Customer shall pay all invoiced amounts within thirty (30) days of the invoice date; late payments "
               "bear interest at one percent per month."),
    ClauseType("Force majeure", ("Is there a force majeure clause?",
                                 "What if performance is prevented by events beyond control?"),
               "Force Majeure. Neither party shall be liable for any failure or delay in performance caused by "
               "events beyond its reasonable control, including acts of God, war, strikes, epidemics or "
               "governmental action."),
    ClauseType("Notices", ("How must notices be given?", "Where are notices sent?"),
               "All notices under this Agreement shall be in writing and delivered by hand, courier or certified "
               "mail to the addresses set out below, and are effective upon receipt."),
    ClauseType("Warranty disclaimer", ("Are warranties disclaimed?", "Is the product provided as is?"),
               "EXCEPT AS EXPRESSLY PROVIDED, THE PRODUCTS ARE PROVIDED AS IS AND EACH PARTY DISCLAIMS ALL IMPLIED "
               "WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE."),
    ClauseType("Delivery", ("What are the delivery terms?", "Who bears the risk of loss in shipping?"),
               "Products shall be delivered FCA Supplier's facility; title and risk of loss pass to Customer upon "
               "delivery to the carrier."),
    ClauseType("Service levels", ("What service levels apply?", "What is the uptime commitment and service credits?"),
               "Provider shall make the Services available 99.9% of the time in each month; if availability falls "
               "below the service level, Customer shall receive service credits."),
    ClauseType("Data protection", ("How is personal data protected?", "What are the data protection obligations?"),
               "Each party shall comply with applicable data protection laws, process personal data only on "
               "documented instructions and implement appropriate technical and organisational security measures."),
    ClauseType("Entire agreement and severability", ("Is there an entire agreement clause?",
                                                     "What if a provision is invalid?"),
               "This Agreement constitutes the entire agreement between the parties and supersedes all prior "
               "agreements; if any provision is held invalid, the remaining provisions remain in full force."),
)


@dataclass(frozen=True)
class ClauseVectors:
    forms: np.ndarray  # one unit vector per question form (each type's questions and its name)
    owner: np.ndarray  # the CLAUSE_TYPES index of each form
    wordings: np.ndarray  # one unit vector per type's wording


def clause_vectors(embedder, cache_dir: Path | None = None) -> ClauseVectors:
    """The library's vectors, read from `cache_dir` when an earlier process saved them for the same
    model and library, else embedded (about a second) and saved there."""
    forms = [(i, text) for i, clause in enumerate(CLAUSE_TYPES) for text in (*clause.questions, clause.name)]
    texts = [text for _, text in forms] + [clause.wording for clause in CLAUSE_TYPES]
    key = hashlib.sha256("\n".join([embedder.identity, *texts]).encode()).hexdigest()[:16]
    cached = cache_dir / f"clauses-{key}.npy" if cache_dir else None
    vectors = _read(cached)
    if vectors is None or vectors.shape != (len(texts), embedder.dimension):
        vectors = embedder.encode(texts)
        _write(cached, vectors)
    return ClauseVectors(vectors[:len(forms)], np.array([i for i, _ in forms]), vectors[len(forms):])


@dataclass(frozen=True)
class ClauseMatch:
    clause: ClauseType
    weight: float  # 0 to 1: how much the clause's wording counts in the search
    wording_vector: np.ndarray


def asked_clause(query_vector: np.ndarray, vectors: ClauseVectors) -> ClauseMatch | None:
    """The clause type a question asks about, or None."""
    similarities = vectors.forms @ query_vector
    best = int(np.argmax(similarities))
    if similarities[best] < MATCH_FROM:
        return None
    weight = min(1.0, (float(similarities[best]) - MATCH_FROM) / (MATCH_FULL - MATCH_FROM))
    index = int(vectors.owner[best])
    return ClauseMatch(CLAUSE_TYPES[index], weight, vectors.wordings[index])


def _read(path: Path | None) -> np.ndarray | None:
    try:
        return np.load(path) if path else None
    except (OSError, ValueError, EOFError):  # missing, or damaged: embed again
        return None


def _write(path: Path | None, vectors: np.ndarray) -> None:
    """Atomically (readers in other processes never see half a file); when the folder is not
    writable the next process embeds the library again."""
    if path is None:
        return
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, vectors)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
