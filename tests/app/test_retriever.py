"""`ingest.langchain.StoreRetriever`: the langchain-tests standard retriever suite, and the
metadata a chain needs to cite its sources."""

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from ingest.langchain import StoreRetriever


class TestStoreRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self, library):
        self.store = library

    @property
    def retriever_constructor(self):
        return StoreRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": self.store}

    @property
    def retriever_query_example(self) -> str:
        return "termination for convenience"


def test_documents_carry_page_section_and_source(library, msa):
    docs = StoreRetriever(store=library, k=2, doc_id="msa.txt").invoke("How is the agreement terminated for convenience?")
    top = docs[0]
    assert "ninety (90) days" in top.page_content
    meta = top.metadata
    assert meta["doc_id"] == msa and meta["source"].endswith("msa.txt") and meta["title"] == "MASTER SERVICES AGREEMENT"
    assert meta["page"] == 1 and meta["pages"] == [1, 1] and "TERMINATION" in meta["section"]
    assert library.document_text(msa)[meta["start"]:meta["end"]] == top.page_content
    assert all(d.metadata["doc_id"] == msa for d in docs)
