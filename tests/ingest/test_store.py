"""The store end to end on small documents: add, search, structure lookups, replace, delete."""

from ingest import Store, UnknownDocumentError, ingest_bytes, ingest_paths


def test_ingest_search_and_lookups(store, tmp_path, contract_text):
    path = tmp_path / "msa.txt"
    path.write_text(contract_text)
    report = ingest_paths([path], store)
    assert report.failed == [] and len(report.added) == 1
    doc = store.documents()[0]
    assert doc.title == "MASTER SERVICES AGREEMENT" and doc.source == str(path)

    hits = store.search("termination for convenience", k=3)
    assert "ninety (90) days" in hits[0].text
    assert hits[0].section.startswith("Article 12 TERMINATION")
    assert hits[0].dense_score > 0.3 and hits[0].keyword_score > 0
    text = store.document_text(doc.doc_id)
    assert text[hits[0].start:hits[0].end] == hits[0].text

    section = store.section(doc.doc_id, "Section 9.2")
    assert section.text.startswith("9.2 Exceptions") and section.text.endswith("required to be disclosed by law.")
    assert store.section(doc.doc_id, "9.2(b)").text.startswith("(b) was known")
    assert store.section(doc.doc_id, "Article IX") == store.section(doc.doc_id, "Article 9")
    assert store.section(doc.doc_id, "Article 9").label == "Article 9 CONFIDENTIALITY"
    assert store.section(doc.doc_id, "Article 7") is None
    assert store.section(doc.doc_id, "Exhibit A").text.startswith("EXHIBIT A")
    definition = store.definition(doc.doc_id, "confidential information")
    assert definition.text.startswith('1.1 "Confidential Information" means') and definition.text.endswith("Price List.")
    assert store.definition(doc.doc_id, "Supplier").text.startswith("This Master Services Agreement")
    assert store.section_chunks(doc.doc_id, "12.3")[0].text.count("12.3 Effect of Termination") == 1


def test_replace_unchanged_and_delete(store, tmp_path, contract_text):
    path = tmp_path / "msa.txt"
    path.write_text(contract_text)
    first = ingest_paths([path], store).added[0]
    assert ingest_paths([path], store).unchanged[0].doc_id == first.doc_id

    path.write_text(contract_text.replace("ninety (90)", "sixty (60)"))
    report = ingest_paths([path], store)
    assert len(report.replaced) == 1 and report.removed[0].doc_id == first.doc_id
    assert [d.doc_id for d in store.documents()] == [report.replaced[0].doc_id]
    assert "sixty (60)" in store.search("termination for convenience notice", k=1)[0].text
    assert store.verify() == []

    removal = store.delete(str(path))
    assert removal.doc_id == report.replaced[0].doc_id and removal.sources == (str(path),)
    assert store.documents() == [] and store.search("termination", k=3) == []
    assert store.verify() == []
    try:
        store.resolve(removal.doc_id)
    except UnknownDocumentError as error:
        assert removal.doc_id in str(error)
    else:
        raise AssertionError("a deleted document still resolves")


def test_upload_by_name_and_reopen(tmp_path, contract_text):
    with Store(tmp_path / "s") as store:
        ingest_bytes("msa.txt", contract_text.encode(), store)
        report = ingest_bytes("msa.txt", contract_text.replace("Acme", "Apex").encode(), store)
        assert len(report.replaced) == 1 and len(store.documents()) == 1
    with Store(tmp_path / "s") as reopened:
        assert reopened.documents()[0].source == "msa.txt"
        assert "Apex" in reopened.search("agreement made between the parties", k=1, doc_id="msa.txt")[0].text


def test_identical_content_at_two_paths_is_one_document(store, tmp_path, contract_text):
    first, second = tmp_path / "a.txt", tmp_path / "copy of a.txt"
    first.write_text(contract_text)
    second.write_text(contract_text)
    report = ingest_paths([first, second], store)
    assert [r.note for r in report.added] == ["", f"same content as {first}"]
    (doc,) = store.documents()
    assert doc.sources == (str(first), str(second)) and store.resolve(str(second)) == doc.doc_id
    second.write_text(contract_text + "\nSCHEDULE 9\nA new schedule.\n")
    report = ingest_paths([second], store)
    assert len(report.replaced) == 1 and report.removed == []  # the old content still has a.txt
    assert len(store.documents()) == 2 and store.verify() == []


def test_new_chunker_settings_rechunk_on_the_next_ingest(tmp_path, contract_text):
    from ingest import IngestSettings

    path = tmp_path / "msa.txt"
    path.write_text(contract_text)
    with Store(tmp_path / "s") as store:
        before = ingest_paths([path], store).added[0]
        smaller = IngestSettings(chunk_tokens=96, overlap_tokens=16)
        report = ingest_paths([path], store, settings=smaller)
        assert report.replaced[0].doc_id == before.doc_id and "re-chunked" in report.replaced[0].note
        assert report.replaced[0].chunks > before.chunks and report.removed == []
        assert ingest_paths([path], store, settings=smaller).unchanged and store.verify() == []


def test_search_does_not_return_the_table_of_contents(store, contract_text):
    contents = "TABLE OF CONTENTS\n" + "\n".join(
        f"ARTICLE {n} {name} .............. {n}" for n, name in ((1, "DEFINITIONS"), (2, "SERVICES"), (9, "CONFIDENTIALITY"))
    )
    ingest_bytes("msa.txt", f"{contents}\n\n{contract_text}".encode(), store)
    hits = store.search("confidentiality", k=5)
    assert hits and hits[0].text.startswith("ARTICLE 9\nCONFIDENTIALITY")
    assert not any("......" in h.text for h in hits)
