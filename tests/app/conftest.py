"""Fixtures for the Q&A and summary tests: one small contract and one small manual, ingested
once per session (embedding is the slow part), and a PDF whose clauses sit on known pages."""

import inspect

import pytest

from ingest import Store, ingest_paths

CONTRACT = (
    "MASTER SERVICES AGREEMENT\n\n"
    'This Master Services Agreement (the "Agreement") is entered into as of March 1, 2024 by and between '
    'Acme Corp., a Delaware corporation ("Customer"), and Widget Ltd., an English company ("Supplier").\n\n'
    "ARTICLE 1\nDEFINITIONS\n"
    '1.1 "Confidential Information" means all non-public information disclosed by a party, including the '
    "Price List and the source code of the Software.\n"
    '1.2 "Services" means the hosting and support services described in Exhibit A.\n'
    '1.3 "Termination Fee" means an amount equal to three (3) months of the monthly fees.\n\n'
    "ARTICLE 2\nTERM\n"
    "2.1 Initial Term. This Agreement begins on the Effective Date and continues for three (3) years.\n"
    "2.2 Renewal. This Agreement renews automatically for successive one (1) year periods unless either "
    "party gives written notice of non-renewal at least sixty (60) days before the end of the then-current term.\n\n"
    "ARTICLE 5\nFEES AND PAYMENT\n"
    "5.1 Fees. Customer shall pay the monthly fee of USD 12,000 for the Services.\n"
    "5.2 Invoices. Supplier invoices monthly in arrears and Customer shall pay each undisputed invoice within "
    "thirty (30) days of receipt. Late amounts bear interest at one percent (1%) per month.\n\n"
    "ARTICLE 9\nCONFIDENTIALITY\n"
    "9.1 Obligations. Each party shall keep the Confidential Information of the other party secret and use it "
    "only to perform this Agreement.\n"
    "9.2 Exceptions. The obligations in Section 9.1 do not apply to information that is or becomes public "
    "through no fault of the receiving party, or that the receiving party must disclose by law.\n\n"
    "ARTICLE 10\nLIMITATION OF LIABILITY\n"
    "10.1 Cap. Each party's total aggregate liability under this Agreement shall not exceed the fees paid by "
    "Customer in the twelve (12) months before the claim.\n"
    "10.2 Exclusions. The cap in Section 10.1 does not apply to breach of Article 9 or to a party's "
    "indemnification obligations.\n\n"
    "ARTICLE 12\nTERMINATION\n"
    "12.1 Termination for Convenience. Customer may terminate this Agreement for convenience on ninety (90) "
    "days' written notice to Supplier and shall then pay the Termination Fee.\n"
    "12.2 Termination for Cause. Either party may terminate this Agreement if the other party commits a "
    "material breach and fails to cure it within thirty (30) days after written notice.\n"
    "12.3 Effect of Termination. On termination Supplier shall return all Confidential Information and "
    "Customer shall pay all undisputed invoices.\n\n"
    "ARTICLE 14\nGOVERNING LAW\n"
    "14.1 Governing Law. This Agreement is governed by the laws of the State of New York. The state and "
    "federal courts in New York County have exclusive jurisdiction over any dispute.\n\n"
    "EXHIBIT A\nSERVICE DESCRIPTION\n"
    "1. Support. Supplier provides support from 9:00 to 17:00 on business days.\n"
)

MANUAL = (
    "VL-20 PUMP CONTROLLER\nINSTALLATION AND OPERATION MANUAL\n\n"
    "1 ABOUT THIS MANUAL\n"
    "This manual describes the installation, operation and maintenance of the VL-20 pump controller, "
    "which drives single-phase pumps of up to 2.2 kW in water supply systems.\n\n"
    "2 SAFETY\n"
    "WARNING: Hazardous voltage. Disconnect mains power and wait five minutes before opening the cover, "
    "or death or serious injury may result.\n"
    "CAUTION: Do not operate the controller above 45 °C ambient temperature; the output stage may be damaged.\n\n"
    "3 INSTALLATION\n"
    "3.1 Mounting. Mount the controller vertically on a flat wall with four M5 screws, leaving 100 mm of "
    "free space above and below for cooling.\n"
    "3.2 Wiring. Connect the mains supply to terminals L and N and the pump motor to terminals U and V. "
    "Tighten the terminal screws to 0.8 Nm.\n\n"
    "4 OPERATION\n"
    "4.1 Start-up. Press and hold the START key for two seconds; the green RUN lamp lights when the pump runs.\n"
    "4.2 Setting the pressure. Use the arrow keys to set the target pressure between 1.0 and 6.0 bar.\n\n"
    "5 MAINTENANCE\n"
    "5.1 Inspection. Every six months, check the terminal screws for tightness and clean the cooling fins "
    "with a dry brush.\n"
    "5.2 Fault codes. Fault code E04 means the pump ran dry; check the water supply and restart.\n"
)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """The langchain-tests suites hold a few coroutine tests: mark those for pytest-asyncio (one
    of their dependencies, in strict mode) before it sorts the collected items, and leave the
    synchronous ones unmarked. Innermost wrapper (trylast), so this runs before its own."""
    outcome = yield
    if inspect.iscoroutinefunction(obj):
        result = outcome.get_result()
        for item in result if isinstance(result, list) else [result] if result else []:
            item.add_marker(pytest.mark.asyncio)


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> Store:
    """A store holding the contract (msa.txt) and the manual (manual.txt)."""
    folder = tmp_path_factory.mktemp("library")
    (folder / "msa.txt").write_text(CONTRACT)
    (folder / "manual.txt").write_text(MANUAL)
    store = Store(folder / "store", lock_timeout_s=5)
    report = ingest_paths([folder / "msa.txt", folder / "manual.txt"], store)
    assert report.failed == []
    yield store
    store.close()


@pytest.fixture(scope="session")
def assistant(library):
    from app.qa import Assistant

    return Assistant(library)


@pytest.fixture(scope="session")
def msa(library) -> str:
    return library.resolve("msa.txt")


@pytest.fixture(scope="session")
def manual(library) -> str:
    return library.resolve("manual.txt")
