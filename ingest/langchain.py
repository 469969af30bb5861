"""`StoreRetriever`: the Tome store as a LangChain retriever, for use in ordinary chains.

    from ingest import Store
    from ingest.langchain import StoreRetriever
    retriever = StoreRetriever(store=Store(".tome"), k=4)            # optionally doc_id="msa.pdf"
    docs = retriever.invoke("termination for convenience")           # also invoke(query, k=2)

Each `Document` holds a retrieved chunk's text; its metadata gives where it comes from: doc_id,
title, source (the file), page and pages (first, last; 1-based physical pages), section, the
character offsets start/end into the document's text, and the scores.
"""

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ingest.errors import IngestError
from ingest.records import Hit


class StoreRetriever(BaseRetriever):
    """Hybrid (dense + BM25) search of an `ingest.Store`, k chunks per query."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any  # an ingest.Store
    k: int = 4
    doc_id: str | None = None  # search only this document (anything Store.resolve accepts)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, doc_id: str | None = None) -> list[Document]:
        if not isinstance(query, str):
            raise IngestError(f"query {query!r:.40}: expected text")
        hits = self.store.search(query, k=k or self.k, doc_id=doc_id or self.doc_id)
        return [to_document(hit) for hit in hits]


def to_document(hit: Hit) -> Document:
    return Document(
        page_content=hit.text,
        id=hit.chunk_id or None,
        metadata={
            "doc_id": hit.doc_id, "title": hit.title, "source": hit.source, "page": hit.pages[0],
            "pages": list(hit.pages), "section": hit.section, "start": hit.start, "end": hit.end,
            "score": hit.score, "dense_score": hit.dense_score, "keyword_score": hit.keyword_score,
        },
    )
